"""The alert rules and the Grafana dashboard of ``monitoring/`` (README "Monitoring"), checked with
the real tools and against the code:

* Debian's ``promtool`` (package ``prometheus``; run-tests.sh installs it as root) checks the
  rules (``promtool check rules``), runs their unit tests (``promtool test rules``: each alert
  fires on its input series and stays quiet beside it) and parses every query of the dashboard;
* every metric a rule or a panel names is one the code exports: the names are read from what
  ``GET /metrics`` (fiwareglancesync/app/metrics.py) and ``sync.py --metrics-file``
  (fiwareglancesync/metrics_file.py) actually write, not from a list kept by hand.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import yaml

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"
RULES = MONITORING / "glancesync-rules.yml"
RULE_TESTS = MONITORING / "glancesync-rules.test.yml"
DASHBOARD = MONITORING / "glancesync-dashboard.json"
# Series Prometheus itself makes: the scrape's ``up`` and the alerts' ``ALERTS``.
PROMETHEUS_OWN = {"up", "ALERTS", "ALERTS_FOR_STATE"}
# What Grafana replaces in a query before sending it (a valid value of each, for promtool).
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.fail("promtool is needed (Debian's prometheus package; run-tests.sh installs it as root: "
                    "apt-get install prometheus)", pytrace=False)
    return found


def run_promtool(*args: str, cwd: Path = MONITORING) -> str:
    done = subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


# ------------------------------------------------------------------ PromQL: the metrics a query names
_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_TOKEN = re.compile(r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[a-z]*|[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
             "group_right", "inf", "nan", "Inf", "NaN"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords, labels and numbers left out)."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    expr = _STRING.sub('""', expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # ranges and subqueries
    expr = _GROUPING.sub(" ", expr)
    names = set()
    for match in _TOKEN.finditer(expr):
        word = match.group(0)
        if match.group(1) or word[0].isdigit() or word in _KEYWORDS:
            continue  # a function or aggregation call, a number or duration, a keyword
        names.add(word)
    return names


def test_metric_names_of_a_query():
    expr = ('sum by (region, status) (rate(glancesync_tasks_total{job=~"$job", status!="a b"}[$__rate_interval])) '
            '/ on (region) group_left (x) max without (le) (other_metric offset 5m) > 0.5 or vector(1e3) '
            'unless histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m:1m]))) and time() - up')
    assert metric_names(expr) == {"glancesync_tasks_total", "other_metric", "h_bucket", "up"}


# ------------------------------------------------------------------ the metrics the code exports
def _sample_names(text: str) -> set[str]:
    from prometheus_client.parser import text_string_to_metric_families

    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


def service_metric_names(monkeypatch) -> set[str]:
    """Every sample name of ``GET /metrics`` once a status was computed and a task ended (and
    succeeded)."""
    from fiwareglancesync.app import metrics
    from fiwareglancesync.glancesync.report import SyncReport
    from fiwareglancesync.glancesync.status import StatusEntry, SyncStatus
    from tests.factories import image

    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)
    monkeypatch.setattr(metrics, "_metrics", None)  # a fresh registry of this test's own
    metrics.record_statuses("RegionA", [StatusEntry(SyncStatus.OK, image(name="base"), None)])
    metrics.record_task("RegionA", "synced", 3.0, SyncReport("RegionA", bytes_by_method=Counter(stream=10)))
    body, _ = metrics.exposition({"RegionA": 1.0})  # a region's last successful task, as read from the tasks
    return _sample_names(body.decode())


def metrics_file_names(tmp_path: Path) -> set[str]:
    """Every sample name of the file ``sync.py --metrics-file`` writes after a run that sent data
    to a region it synchronised."""
    from fiwareglancesync.glancesync.status import StatusEntry, SyncStatus
    from fiwareglancesync.metrics_file import RunMetrics, write_metrics_file
    from tests.factories import image

    run = RunMetrics()
    run.record_statuses("RegionA", [StatusEntry(SyncStatus.OK, image(name="base"), None)])
    run.record_transfer("RegionA", "stream", 10)
    run.record_success("RegionA")
    write_metrics_file(str(tmp_path / "glancesync.prom"), run, success=True)
    return _sample_names((tmp_path / "glancesync.prom").read_text())


@pytest.fixture
def exported(monkeypatch, tmp_path) -> set[str]:
    return service_metric_names(monkeypatch) | metrics_file_names(tmp_path)


def test_the_exported_names_are_read_from_the_code(exported):
    # a few of each source, to show the derivation sees both (the full check is below)
    assert {"glancesync_images", "glancesync_tasks_total", "glancesync_task_duration_seconds_bucket",
            "glancesync_region_status_age_seconds", "glancesync_run_success",
            "glancesync_last_run_timestamp_seconds", "glancesync_transferred_bytes"} <= exported


def unknown_metrics(queries: dict[str, str], exported: set[str]) -> dict[str, set[str]]:
    """where -> metric names of its query that nothing exports."""
    unknown = {where: metric_names(expr) - exported - PROMETHEUS_OWN for where, expr in queries.items()}
    return {where: names for where, names in unknown.items() if names}


# ------------------------------------------------------------------ the rules
def rule_expressions() -> dict[str, str]:
    rules = yaml.safe_load(RULES.read_text())
    return {rule["alert"]: rule["expr"] for group in rules["groups"] for rule in group["rules"]}


def test_promtool_checks_the_rules():
    assert "SUCCESS" in run_promtool("check", "rules", str(RULES))


def test_promtool_unit_tests_of_every_alert_pass():
    assert "SUCCESS" in run_promtool("test", "rules", str(RULE_TESTS))


def test_every_alert_has_a_unit_test_that_sees_it_fire():
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    firing = {case["alertname"] for test in tests for case in test["alert_rule_test"] if case["exp_alerts"]}
    quiet = {case["alertname"] for test in tests for case in test["alert_rule_test"] if not case["exp_alerts"]}
    assert firing == set(rule_expressions())
    assert quiet == set(rule_expressions())


def test_the_rules_name_only_exported_metrics(exported):
    assert unknown_metrics(rule_expressions(), exported) == {}


# ------------------------------------------------------------------ the dashboard
def dashboard_queries(dashboard: dict) -> dict[str, str]:
    """"panel title #n" -> query, of every panel (rows' nested panels included) and variable."""
    queries = {}
    panels = list(dashboard["panels"])
    while panels:
        panel = panels.pop(0)
        panels.extend(panel.get("panels", []))
        for n, target in enumerate(panel.get("targets", [])):
            queries[f"{panel['title']} #{n}"] = target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            label_values = re.fullmatch(r"label_values\((.*),\s*\w+\)", variable["definition"])
            queries[f"variable {variable['name']}"] = label_values.group(1)
    return queries


def test_every_dashboard_query_parses(tmp_path):
    queries = dashboard_queries(json.loads(DASHBOARD.read_text()))
    assert len(queries) >= 10
    recording = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"glancesync_dashboard:query_{n}", "expr": _grafana_free(expr)}
        for n, expr in enumerate(queries.values())]}]}
    (tmp_path / "dashboard-queries.yml").write_text(yaml.safe_dump(recording))

    assert f"SUCCESS: {len(queries)} rules found" in run_promtool("check", "rules", "dashboard-queries.yml",
                                                                    cwd=tmp_path)


def _grafana_free(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def test_the_dashboard_names_only_exported_metrics(exported):
    assert unknown_metrics(dashboard_queries(json.loads(DASHBOARD.read_text())), exported) == {}


def test_a_panel_naming_a_metric_the_code_does_not_export_is_caught(exported):
    dashboard = json.loads(DASHBOARD.read_text())
    dashboard["panels"][1]["targets"][0]["expr"] = 'sum by (region) (glancesync_image{status="ok"})'

    unknown = unknown_metrics(dashboard_queries(dashboard), exported)

    assert unknown == {f"{dashboard['panels'][1]['title']} #0": {"glancesync_image"}}
