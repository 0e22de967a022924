"""Read-only modes list the regions concurrently, bounded by max_children, output in the usual order."""

from __future__ import annotations

import threading
import time

import pytest

from fiwareglancesync.glancesync.config import load_string
from fiwareglancesync.glancesync.engine import GlanceSync
from fiwareglancesync.glancesync.errors import RegionNotFound
from fiwareglancesync.glancesync.facades.mock import MemoryStore, MockFacade
from tests.factories import image

CONFIG = "[main]\nmaster_region = Master\nmax_children = {n}\n[master]\ncredential = u,cA==,http://k/v3,t\n"
REGIONS = ["R1", "R2", "R3", "R4"]


class SlowListing(MockFacade):
    """A mock whose region listings take a while and record how many run at once."""

    active = 0
    peak = 0
    guard = threading.Lock()

    def get_imagelist(self, region):
        if region.name == "Master":
            return super().get_imagelist(region)
        with SlowListing.guard:
            SlowListing.active += 1
            SlowListing.peak = max(SlowListing.peak, SlowListing.active)
        try:
            time.sleep(0.05)
            return super().get_imagelist(region)
        finally:
            with SlowListing.guard:
                SlowListing.active -= 1


@pytest.fixture
def store():
    store = MemoryStore()
    store.regions_["Master"] = [image(name="img", id="m1", region="Master", owner="tid")]
    for name in REGIONS:
        store.regions_[name] = [image(name="img", id=f"{name}-1", region=name, owner="tid")] if name != "R2" else []
    SlowListing.active = SlowListing.peak = 0
    return store


def engine(store, workers):
    return GlanceSync(load_string(CONFIG.format(n=workers), environ={}), lambda t: SlowListing(t, store))


@pytest.mark.parametrize("workers,peak", [(1, 1), (2, 2), (4, 4)])
def test_listings_run_ahead_at_most_max_children_at_once_and_answer_in_order(store, workers, peak):
    sync = engine(store, workers)
    sync.master_images()
    sync.prefetch(["R1", "R2", "R3", "R4", "Nowhere"], workers)
    statuses = {}
    for name in REGIONS:
        statuses[name] = [e.status.value for e in sync.region_status(name)]
    with pytest.raises(RegionNotFound):  # a failed listing is raised when its region is asked for
        sync.region_status("Nowhere")
    assert statuses == {"R1": ["ok"], "R2": ["pending_upload"], "R3": ["ok"], "R4": ["ok"]}
    assert SlowListing.peak == peak


def test_a_listing_fetched_ahead_is_used_once(store):
    sync = engine(store, 2)
    sync.master_images()
    sync.prefetch(["R2"], 2)
    assert [e.status.value for e in sync.region_status("R2")] == ["pending_upload"]
    store.regions_["R2"] = [image(name="img", id="R2-1", region="R2", owner="tid")]
    assert [e.status.value for e in sync.region_status("R2")] == ["ok"], "a second look lists again"
