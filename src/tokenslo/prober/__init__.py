"""Black-box prober: synthetic OAuth transactions exported as probe_* metrics."""
