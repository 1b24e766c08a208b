"""The ``alerting.burn_rate`` option: default, traffic-aware, and round trips."""

from __future__ import annotations

from tokenslo.core.model import STATIC, TRAFFIC_AWARE
from tokenslo.spec.loader import load_text
from tokenslo.spec.writer import dump_v1

FILE = """\
version: tokenslo/v1
service: idp
slos:
  - name: avail
    objective: 99.9
    window: 30d
    sli:
      events:
        bad: sum(increase(x{{code=~"5.."}}[{{{{window}}}}]))
        total: sum(increase(x[{{{{window}}}}]))
{alerting}"""


def test_static_is_the_default():
    [slo], _ = load_text(FILE.format(alerting=""))
    assert slo.alerting.burn_rate == STATIC


def test_traffic_aware_loads_and_round_trips_through_the_writer():
    text = FILE.format(alerting="    alerting:\n      burn_rate: traffic-aware\n")
    [slo], findings = load_text(text)
    assert slo.alerting.burn_rate == TRAFFIC_AWARE
    assert findings == []
    written = dump_v1([slo])
    assert "burn_rate: traffic-aware" in written
    [again], _ = load_text(written)
    assert again.alerting == slo.alerting


def test_no_unreachable_page_warning_for_traffic_aware():
    """At 50 % a static 1h page needs a 720 % error ratio (warned); a traffic-aware
    one fires once 2 % of the absolute budget is lost, whatever the ratio."""
    text = FILE.replace("99.9", "50")
    _, static_findings = load_text(text.format(alerting=""))
    assert any("can never fire" in f.message for f in static_findings)
    aware = text.format(alerting="    alerting:\n      burn_rate: traffic-aware\n")
    _, aware_findings = load_text(aware)
    assert not any("can never fire" in f.message for f in aware_findings)
