"""The alert rules of ``monitoring/`` (README "Monitoring") in a real Prometheus (Debian's
``prometheus``) scraping the service's ``/metrics`` under gunicorn on the lab, and the file
``sync.py --metrics-file`` writes through Debian's ``prometheus-node-exporter`` textfile collector:
a region drifts (a new master image), the drift alert goes pending, then firing, for both sources;
a ``sync.py`` run syncs the regions and the alert resolves.

The rules are the shipped file with shorter ``for:`` durations (seconds, not hours), so that the
test takes a minute; the shipped durations are tested by ``promtool test rules``
(tests/unit/test_monitoring.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.api.processes import ServiceProcess, bin_path, free_port
from tests.integration.test_api_lab import Deployment

RULES = Path(__file__).resolve().parents[2] / "monitoring" / "glancesync-rules.yml"
ALERT = "GlanceSyncRegionOutOfStep"
FOR_SECONDS = 8
WAIT = 60


def tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is needed (Debian's prometheus and prometheus-node-exporter packages; run-tests.sh "
                    "installs them as root)", pytrace=False)
    return found


def short_rules(path: Path) -> Path:
    """The shipped rules, each ``for:`` cut to FOR_SECONDS."""
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = f"{FOR_SECONDS}s"
    path.write_text(yaml.safe_dump(rules))
    return path


@pytest.fixture
def watched(lab, tmp_path):
    """(deployment, prometheus url, textfile path): the service (status refresh every 2 s), a
    node_exporter reading the textfile directory, a Prometheus scraping both every second."""
    deployment = Deployment(lab, tmp_path, service_settings="STATUS_REFRESH: 2\n")
    textfiles = tmp_path / "textfiles"
    textfiles.mkdir()
    processes: list[ServiceProcess] = []
    try:
        deployment.start()
        port = free_port()
        node = ServiceProcess([tool("prometheus-node-exporter"), "--collector.disable-defaults", "--collector.textfile",
                               f"--collector.textfile.directory={textfiles}", f"--web.listen-address=127.0.0.1:{port}"],
                              dict(os.environ), f"http://127.0.0.1:{port}", tmp_path / "node-exporter.log")
        processes.append(node.start())
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(short_rules(tmp_path / "rules.yml"))],
            "scrape_configs": [
                {"job_name": "glancesync", "static_configs": [{"targets": [deployment.service.url[len("http://"):]]}]},
                {"job_name": "node", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]},
            ],
        }
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        prometheus = ServiceProcess([tool("prometheus"), f"--config.file={tmp_path / 'prometheus.yml'}",
                                     f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
                                    dict(os.environ), f"http://127.0.0.1:{port}", tmp_path / "prometheus.log")
        processes.append(prometheus.start())
        yield deployment, prometheus.url, textfiles / "glancesync.prom"
    finally:
        for process in reversed(processes):
            process.stop()
        deployment.stop()


def api(url: str, path: str) -> dict:
    with urllib.request.urlopen(url + path, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]


def drift_alerts(url: str) -> dict[tuple[str, str], str]:
    """(job, region) -> state of the drift alerts Prometheus has now."""
    return {(alert["labels"]["job"], alert["labels"]["region"]): alert["state"]
            for alert in api(url, "/api/v1/alerts")["alerts"] if alert["labels"]["alertname"] == ALERT}


def sync_py(deployment, *args: str) -> None:
    done = subprocess.run([bin_path("sync.py"), *args], env=deployment.environ, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr


def watch(url: str, until, seen: dict[tuple[str, str], list[str]]) -> None:
    """Poll the drift alerts, appending each (job, region)'s state changes to ``seen`` (``resolved``
    when an alert it had is gone), until ``until(now)`` is true."""
    deadline = time.monotonic() + WAIT
    while True:
        now = drift_alerts(url)
        for key in set(now) | set(seen):
            state = now.get(key, "resolved")
            history = seen.setdefault(key, [])
            if not history or history[-1] != state:
                history.append(state)
        if until(now):
            return
        assert time.monotonic() < deadline, (seen, now)
        time.sleep(0.3)


def test_a_region_drifts_and_the_drift_alert_goes_pending_firing_resolved(watched):
    deployment, prometheus, textfile = watched
    regions = ("RegionA", "other:RegionB")
    keys = [(job, region) for job in ("glancesync", "node") for region in regions]
    sync_py(deployment, "--show-status", "--metrics-file", str(textfile), *regions)  # in step: nothing selected yet
    # both sources scraped (the service's statuses computed by its background refresh), no alert
    deadline = time.monotonic() + WAIT
    while (scraped := {(s["metric"]["job"], s["metric"]["region"])
                       for s in api(prometheus, "/api/v1/query?query=glancesync_images")["result"]}) != set(keys):
        assert time.monotonic() < deadline, (scraped, textfile.read_text()[-1500:])
        time.sleep(0.3)
    assert drift_alerts(prometheus) == {}

    deployment.create_master_image("drift", os.urandom(64 * 1024), type="baseimage")
    sync_py(deployment, "--show-status", "--metrics-file", str(textfile), *regions)
    seen: dict[tuple[str, str], list[str]] = {}
    watch(prometheus, lambda now: all(now.get(key) == "firing" for key in keys), seen)
    assert all(seen[key] == ["pending", "firing"] for key in keys), seen
    firing = api(prometheus, "/api/v1/alerts")["alerts"]
    assert {alert["annotations"]["summary"] for alert in firing if alert["labels"]["alertname"] == ALERT} == {
        f"GlanceSync: region {region} is out of step" for region in regions}

    sync_py(deployment, "--metrics-file", str(textfile), *regions)  # the cron run
    watch(prometheus, lambda now: not now, seen)

    assert all(seen[key] == ["pending", "firing", "resolved"] for key in keys), seen
    assert sorted(deployment.copies("RegionA")) == sorted(deployment.copies("RegionB")) == ["drift"]
    rules = [rule for group in api(prometheus, "/api/v1/rules")["groups"] for rule in group["rules"]]
    assert {rule["name"]: rule["state"] for rule in rules}[ALERT] == "inactive"
    assert {rule["name"] for rule in rules if rule["state"] != "inactive"} == set()  # the others stayed quiet
