"""The federation lab (tests/integration/lab): Master plus three regions on the first Keystone and
two on the second, every Glance behind a WAN link of its own (a token bucket and a latency per
site, tests/integration/lab/wan.py), glance-download enabled between the regions of a Keystone."""

from __future__ import annotations

import io
import os
import time
import urllib.request

import pytest

from tests.integration.lab import start_lab
from tests.integration.lab.model import federation
from tests.integration.lab.wan import LinkSpec, TokenBucket

RATE = 8 * 1024 * 1024  # bytes per second, each way, per site
LATENCY = 0.05


@pytest.fixture(scope="module")
def wan_lab():
    lab = start_lab(glances=federation(3, 2), wan={**{region: LinkSpec(RATE, LATENCY) for region in
                                                        ("Master", "RegionA", "RegionA2", "RegionA3", "RegionB",
                                                         "RegionB2")}})
    yield lab
    lab.stop()


def wait_active(client, image_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        image = client.images.get(image_id)
        if image["status"] == "active" or time.monotonic() > deadline:
            return image
        assert not image.get("os_glance_failed_import"), image
        time.sleep(0.2)


def test_the_federation_has_its_regions_in_both_keystones_behind_links(wan_lab):
    assert wan_lab.ks1.regions == ("Master", "RegionA", "RegionA2", "RegionA3")
    assert wan_lab.ks2.regions == ("RegionB", "RegionB2")
    for region in wan_lab.regions:
        endpoint = wan_lab.glance_client(wan_lab.glances[region].keystone, region).http_client.get_endpoint()
        assert endpoint.rstrip("/") == wan_lab.endpoint_url(region) != wan_lab.glance_url(region)


def test_a_link_limits_the_bandwidth_and_delays_each_request(wan_lab):
    client = wan_lab.glance_client("ks1", "Master")
    data = os.urandom(4 * 1024 * 1024)
    image = client.images.create(name="wan-rate", disk_format="raw", container_format="bare")
    try:
        started = time.monotonic()
        client.images.upload(image["id"], io.BytesIO(data), image_size=len(data))
        elapsed = time.monotonic() - started
        assert elapsed >= 0.8 * len(data) / RATE, elapsed  # 0.5 s at 8 MiB/s; loopback alone: ~0.05 s
        assert wan_lab.links["Master"].bytes_in >= len(data)
        started = time.monotonic()
        with urllib.request.urlopen(wan_lab.endpoint_url("Master") + "/healthcheck", timeout=30) as answer:
            answer.read()
        assert time.monotonic() - started >= LATENCY
    finally:
        client.images.delete(image["id"])


@pytest.mark.parametrize("source, target", [("Master", "RegionA3"), ("RegionA", "RegionA2"),
                                            ("RegionB", "RegionB2")])
def test_glance_download_works_between_the_regions_of_a_keystone_through_the_links(wan_lab, source, target):
    keystone = wan_lab.glances[source].keystone
    origin, destination = wan_lab.glance_client(keystone, source), wan_lab.glance_client(keystone, target)
    data = os.urandom(1024 * 1024)
    image = origin.images.create(name="wan-gd", disk_format="raw", container_format="bare", visibility="public")
    copy = destination.images.create(name="wan-gd", disk_format="raw", container_format="bare")
    try:
        origin.images.upload(image["id"], io.BytesIO(data), image_size=len(data))
        served = wan_lab.links[source].bytes_out
        destination.http_client.post(f"/v2/images/{copy['id']}/import", json={"method": {
            "name": "glance-download", "glance_region": source, "glance_image_id": image["id"],
            "glance_service_interface": "public"}})
        done = wait_active(destination, copy["id"])
        assert (done["status"], done["checksum"]) == ("active", origin.images.get(image["id"])["checksum"])
        assert wan_lab.links[source].bytes_out - served >= len(data)  # the data crossed the source's link
    finally:
        origin.images.delete(image["id"])
        destination.images.delete(copy["id"])


def test_the_token_bucket_spreads_a_rate_over_concurrent_takers():
    bucket = TokenBucket(4 * 1024 * 1024)
    started = time.monotonic()
    for _ in range(32):  # 2 MiB in 64 KiB pieces
        bucket.take(64 * 1024)
    assert 0.4 <= time.monotonic() - started < 1.5
