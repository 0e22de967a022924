"""Multi-store regions on the real lab (README "Stores and edge caches"): RegionE's Glance has two
file stores (``central``, the default, and ``edge1``) and an image cache, in a lab of its own.
The facade's store operations pass the contract suite; ``stores = all`` puts every copy in both
stores; a copy missing one is ``pending_stores`` in ``--show-status`` (text and JSON), the REST
API, the metrics and the status page, and a sync repairs it with ``copy-image`` without a byte
from the client or the master; a store that fails is one ERROR and is repaired by the next run."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
import requests

from fiwareglancesync.glancesync.facades.openstack import OpenStackFacade
from fiwareglancesync.glancesync.region import Region
from tests.facades.contract import StoresContract, World as ContractWorld
from tests.integration.lab import start_lab
from tests.integration.lab.images import LabImages, same_data
from tests.integration.lab.model import EDGE, GLANCES
from tests.integration.test_api_lab import Deployment
from tests.integration.test_contract_openstack import lab_target
from tests.integration.test_status_page_lab import region_page_cell

STORES = ("central", "edge1")


@pytest.fixture(scope="module")
def edge_lab():
    lab = start_lab(glances=GLANCES + (EDGE,))
    yield lab
    lab.stop()


# ---------------------------------------------------------------- the facade's contract
class TestOpenStackStoresContract(StoresContract):
    @pytest.fixture
    def world(self, edge_lab):
        facade = OpenStackFacade(lab_target(edge_lab, "master", "ks1"))
        made = ContractWorld(facade=facade, region=Region("master", "RegionE"),
                             expected_regions=set(edge_lab.keystone("ks1").regions),
                             tenant_id=edge_lab.session("ks1").get_project_id(),
                             other_region=Region("master", "RegionA"), stores=STORES)
        yield made
        made.clean()


# ---------------------------------------------------------------- sync.py
class Edge(LabImages):
    def __init__(self, lab, tmp_path: Path):
        super().__init__(lab, tmp_path, "st")
        self.write_config()

    def write_config(self, **master) -> None:
        condition = f"image.is_public and image.name.startswith('{self.prefix}')"
        self.lab.write_glancesync_conf(self.config, main={"lock_dir": str(self.tmp / "locks")},
                                       master={"metadata_condition": condition, **master})

    def master_reads(self, image_id: str) -> int:
        log = self.lab.state_dir / self.lab.glances["Master"].name / "uwsgi.log"
        return log.read_text(errors="replace").count(f"GET /v2/images/{image_id}/file ")

    def store_dir(self, store: str) -> Path:
        return self.lab.state_dir / self.lab.glances["RegionE"].name / f"store-{store}"


@pytest.fixture
def edge(edge_lab, tmp_path):
    made = Edge(edge_lab, tmp_path)
    yield made
    made.cleanup()


def stores_of(image: dict) -> set[str]:
    return set((image.get("stores") or "").split(","))


def test_stores_all_puts_every_new_copy_in_both_stores(edge):
    masters = [edge.create(f"img{n}", os.urandom((64 + n) * 1024), type="base") for n in range(2)]
    edge.write_config(stores="all")
    for method in ("glance-download", "stream"):
        edge.write_config(stores="all", transfer_method=method)
        result = edge.sync_py("RegionE")
        assert result.returncode == 0, result.stderr
        for n, master in enumerate(masters):
            copy = edge.only("RegionE", f"img{n}")
            same_data(copy, master)
            assert stores_of(copy) == set(STORES), (method, copy.get("stores"))
        assert edge.status("RegionE") == {"RegionE/img0": "ok", "RegionE/img1": "ok"}
        edge.cleanup_region("RegionE")


def test_a_copy_missing_a_store_is_pending_stores_everywhere_and_repaired_server_side(edge, edge_lab, tmp_path):
    master = edge.create("img", os.urandom(300 * 1024), type="base")
    assert edge.sync_py("RegionE").returncode == 0  # no stores option: the default store only
    copy = edge.only("RegionE", "img")
    assert stores_of(copy) == {"central"}

    edge.write_config(stores="all")
    assert edge.status("RegionE") == {"RegionE/img": "pending_stores"}
    document = json.loads(edge.sync_py("--show-status", "--format", "json", "RegionE").stdout)
    [entry] = [i for i in document["regions"][0]["images"] if i["name"] == edge.name("img")]
    assert (entry["status"], entry["message"]) == ("pending_stores", "not in store(s) edge1")

    # the REST API, the metrics and the status page say the same
    deployment = Deployment(edge_lab, tmp_path / "service", master={"stores": "all"}, prefix=edge.prefix)
    deployment.start()
    try:
        token = deployment.token()
        status, body = deployment.call("GET", "/regions/RegionE", token)
        assert status == 200 and [(i["name"], i["status"]) for i in body["images"]] == [(edge.name("img"),
                                                                                         "pending_stores")]
        metrics = requests.get(deployment.service.url + "/metrics", timeout=30).text
        assert 'glancesync_images{region="RegionE",status="pending_stores"} 1.0' in metrics
        assert region_page_cell(deployment.service.url, edge_lab.credential("ks1", "admin"), "RegionE",
                                f'#images td.status[data-image="{edge.name("img")}"]') == ("pending_stores",
                                                                                            "status pending")
    finally:
        deployment.service.stop()

    reads_before = edge.master_reads(master["id"])
    result = edge.sync_py("RegionE")
    assert result.returncode == 0, result.stderr
    assert "INFO:RegionE: Summary: 0 images uploaded (0.0 MB), 0 bytes sent" in result.stderr
    assert "1 images copied to more stores" in result.stderr
    assert edge.master_reads(master["id"]) == reads_before  # the master served nothing
    repaired = edge.only("RegionE", "img")
    assert repaired["id"] == copy["id"] and stores_of(repaired) == set(STORES)
    same_data(repaired, master)
    assert edge.status("RegionE") == {"RegionE/img": "ok"}


def test_a_failing_store_is_one_error_and_the_next_run_repairs_it(edge):
    master = edge.create("img", os.urandom(128 * 1024), type="base")
    edge.write_config(stores="all", transfer_method="stream")
    directory = edge.store_dir("edge1")
    saved = directory.with_name("store-edge1.saved")
    directory.rename(saved)
    directory.write_text("not a directory: writes to this store fail\n")
    try:
        result = edge.sync_py("RegionE")
    finally:
        directory.unlink()
        saved.rename(directory)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    assert errors[0] == (f"ERROR:RegionE: image {edge.name('img')} could not be copied to store edge1; it stays "
                         "usable in its other stores and the next sync tries again")
    assert [line for line in errors if "could not be copied" in line] == errors[:1]
    copy = edge.only("RegionE", "img")
    assert copy["status"] == "active" and "central" in stores_of(copy)
    same_data(copy, master)
    assert edge.status("RegionE") == {"RegionE/img": "pending_stores"}

    again = edge.sync_py("RegionE")
    assert again.returncode == 0, again.stderr
    assert stores_of(edge.only("RegionE", "img")) == set(STORES)


def test_an_unknown_store_is_a_configuration_error_naming_target_region_and_store(edge):
    edge.create("img", os.urandom(16 * 1024), type="base")
    edge.write_config(stores="central, edge7")
    result = edge.sync_py("RegionE")
    assert result.returncode == 1
    assert ("ERROR:RegionE: store edge7 of target master is not a store of region RegionE (its stores: "
            "central, edge1)") in result.stderr
    assert edge.images("RegionE") == []


def test_precache_queues_the_copies_the_edge_cache_lacks_and_a_region_without_one_warns(edge):
    master = edge.create("img", os.urandom(96 * 1024), type="base")
    edge.write_config(precache="true")
    result = edge.sync_py("RegionE", "RegionA")
    assert result.returncode == 0, result.stderr
    assert "INFO:RegionE: 1 images queued for the region's image cache (0 already cached or queued)" in result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING:")]
    assert warnings == ["WARNING:RegionA: precache is skipped: the region's Glance has no image cache API (image "
                        "API 2.14 and later, with an image cache), or this credential may not use it"]
    copy = edge.only("RegionE", "img")
    deadline = time.monotonic() + 60  # Glance's prefetcher caches queued images every second here
    while True:
        document = json.loads(edge.sync_py("--show-status", "--format", "json", "RegionE").stdout)
        [entry] = [i for i in document["regions"][0]["images"] if i["name"] == edge.name("img")]
        if entry["cache"] == "cached" or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert (entry["id"], entry["status"], entry["cache"]) == (copy["id"], "ok", "cached")
    nodes = edge.clients["RegionE"].http_client.get(f"/v2/cache/nodes/{copy['id']}")[1]
    assert nodes == [edge.lab.glance_url("RegionE")]
    again = edge.sync_py("RegionE")
    assert "INFO:RegionE: 0 images queued for the region's image cache (1 already cached or queued)" in again.stderr
    same_data(copy, master)


def test_the_service_metrics_and_region_page_show_the_cache_state(edge, edge_lab, tmp_path):
    edge.create("img", os.urandom(48 * 1024), type="base")
    edge.write_config(precache="true")
    assert edge.sync_py("RegionE").returncode == 0
    deployment = Deployment(edge_lab, tmp_path / "service", master={"precache": "true"}, prefix=edge.prefix)
    deployment.start()
    try:
        deadline = time.monotonic() + 60
        while True:  # the prefetcher caches the queued copy within seconds
            status, body = deployment.call("GET", "/regions/RegionE", deployment.token())
            metrics = requests.get(deployment.service.url + "/metrics", timeout=30).text
            if 'glancesync_images_cache{region="RegionE",state="cached"} 1.0' in metrics or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert 'glancesync_images_cache{region="RegionE",state="cached"} 1.0' in metrics
        assert region_page_cell(deployment.service.url, edge_lab.credential("ks1", "admin"), "RegionE",
                                f'td.cache[data-image="{edge.name("img")}"]') == ("cached", "cache")
    finally:
        deployment.service.stop()
