"""SLO specification: the YAML (v1) and OpenSLO inputs, mapped to one model."""
