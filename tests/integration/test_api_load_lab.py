"""Issue 10 as a regression test: under concurrent load on the real lab, GET /regions/<r> asks
Keystone (almost) nothing: at most 0.05 Keystone requests per API request, counted from the
lab Keystones' own request logs, and no request fails.  (Throughput and latency goals are
bench/api_load.py's: they depend on the machine.)"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from tests.integration.test_api_lab import Deployment

CLIENTS = 16
SECONDS = 5


def keystone_requests(lab) -> int:
    count = 0
    for name in lab.keystones:
        with open(lab.state_dir / name / "uwsgi.log", "rb") as stream:
            count += sum(1 for line in stream if b"} [" in line and b" => generated " in line)
    return count


def test_concurrent_region_status_requests_reuse_the_keystone_sessions(lab, tmp_path):
    deployment = Deployment(lab, tmp_path, workers=2)
    deployment.create_master_image("one", b"one" * 100, type="baseimage")
    deployment.start()
    try:
        token = deployment.token()

        def hammer(seconds: float) -> list[int]:
            statuses, stop = [], time.monotonic() + seconds
            while time.monotonic() < stop:
                statuses.append(deployment.call("GET", "/regions/RegionA", token)[0])
            return statuses

        with ThreadPoolExecutor(CLIENTS) as pool:  # warm-up: every worker's logins and token check
            list(pool.map(hammer, [1.0] * CLIENTS))
        before = keystone_requests(lab)
        with ThreadPoolExecutor(CLIENTS) as pool:
            statuses = [status for batch in pool.map(hammer, [SECONDS] * CLIENTS) for status in batch]
        during = keystone_requests(lab) - before
    finally:
        deployment.stop()

    assert statuses and set(statuses) == {200}
    assert during / len(statuses) <= 0.05, (during, len(statuses))
