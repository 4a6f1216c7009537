import http.server
import threading

import orjson
import pytest

from models.report import experiment_report, logloss_interval
from streams.kafka.broker import free_port
from streams.ops.reports import ReportUnavailable, fetch_report
from streams.settings import Settings

REPORT = {
    "models": {"prod": {}, "baseline": {}},
    "tripwire": {"alert": True, "reason": "logloss 0.33 does not beat the baseline 0.32 by at least 0"},
    "experiment": {
        # The learner's intervals, over buckets of users (models.significance).
        "A": {"n": 100, "label_rate": 0.1, "logloss": 0.3, "logloss_low": 0.2603, "logloss_high": 0.3397},
        "B": {"n": 50, "label_rate": 0.14, "logloss": 0.33, "logloss_low": 0.25, "logloss_high": 0.41},
        "C": {"n": 0, "label_rate": None, "logloss": None},
    },
    "comparisons": [
        {"a": "A", "b": "B", "significant": True,
         "label_rate": {"estimate": 0.04, "low": 0.0012, "high": 0.0788},
         "logloss": {"estimate": 0.03, "low": -0.05, "high": 0.11}},
        {"a": "A", "b": "C", "significant": False, "label_rate": None, "logloss": None},
    ],
    "examples": 150,
}


def test_report_table_has_each_arm_and_each_comparison():
    assert experiment_report(REPORT).splitlines() == [
        "experiment: 150 examples",
        "arm    n  label rate  log loss  95% CI",
        "A    100      0.1000    0.3000  [0.2603, 0.3397]",
        "B     50      0.1400    0.3300  [0.2500, 0.4100]",
        "C      0           -         -  -",
        "",
        "a vs b  label rate b - a            log loss b - a              significant",
        "A vs B  +0.0400 [+0.0012, +0.0788]  +0.0300 [-0.0500, +0.1100]  yes",
        "A vs C  -                           -                           no",
        "",
        "tripwire: ALERT (logloss 0.33 does not beat the baseline 0.32 by at least 0)",
    ]


def test_a_report_without_experiment_data_says_so():
    assert experiment_report({"examples": 0, "experiment": {}, "comparisons": []}).splitlines() == [
        "experiment: 0 examples",
        "no arm has labelled examples yet",
    ]


def test_logloss_interval_is_the_learners_or_none():
    assert logloss_interval({"n": 9, "logloss": 1.0, "logloss_low": 0.5, "logloss_high": 1.5}) == (0.5, 1.5)
    assert logloss_interval({"n": 9, "logloss": 1.0, "logloss_low": 0.5, "logloss_high": None}) is None
    # A per-example spread is not turned into an interval: one user's examples are not independent.
    assert logloss_interval({"n": 100, "logloss": 0.3, "logloss_variance": 0.04}) is None


class _Learner(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # the name http.server calls
        body = orjson.dumps(REPORT)
        self.send_response(200 if self.path == "/metrics.json" else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_fetch_report_asks_the_learner_first():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Learner)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        settings = Settings(web_host="127.0.0.1", learner_web_port=server.server_port, bootstrap="127.0.0.1:1")
        assert fetch_report(settings) == REPORT
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_report_says_how_to_start_the_learner_when_nothing_answers():
    port = free_port()
    settings = Settings(learner_web_port=port, bootstrap="127.0.0.1:1")
    with pytest.raises(ReportUnavailable) as info:
        fetch_report(settings)
    message = str(info.value)
    assert "\n" not in message
    assert f"the learner does not answer at http://127.0.0.1:{port}/metrics.json" in message
    assert "the broker at 127.0.0.1:1 is not reachable" in message
    assert "start the learner" in message
    assert isinstance(info.value, RuntimeError)
