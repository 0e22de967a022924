"""max_copies (README "How copies are made"): a region's copies run concurrently up to that
number, the kernels and ramdisks other images refer to land before those images, and the
region's output stays in plan order (each copy's lines held and written in order)."""

from __future__ import annotations

import logging
import threading

import pytest

from fiwareglancesync.glancesync.config import load_string
from fiwareglancesync.glancesync.engine import GlanceSync
from fiwareglancesync.glancesync.errors import TransferError
from fiwareglancesync.glancesync.facades.mock import MemoryStore, MockFacade
from tests.unit.test_plan_apply import CONFIG, RecordingFacade, image

WAIT = 10.0  # seconds a copy waits for the others it must meet (a failure, never a pass, if exceeded)


class MeetingFacade(RecordingFacade):
    """Uploads that wait until ``meet`` uploads run at once (a barrier), so they can only succeed
    concurrently; each records how many ran at once; ``fail`` names an upload that fails."""

    def __init__(self, inner, calls, meet, fail=None):
        super().__init__(inner, calls)
        self.barrier = threading.Barrier(meet, timeout=WAIT) if meet > 1 else None
        self.fail, self.lock, self.running, self.most = fail, threading.Lock(), 0, 0
        self.first_done = threading.Event()

    def upload_image(self, region, image, source):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            if image.name != "kern" and self.barrier is not None:  # the kernel's wave is its own
                self.barrier.wait()
            logging.getLogger("glancesync.facades.mock").warning(f"{region.fullname}: facade line of {image.name}")
            if image.name == self.fail:
                raise TransferError(f"{region.fullname}: Upload of {image.name} Failed. Cause: broken", region.fullname)
            return super().upload_image(region, image, source)
        finally:
            with self.lock:
                self.running -= 1


def world(max_copies, meet, fail=None, names=("a", "b", "c", "d")):
    store = MemoryStore()
    store.regions_["Master"] = [image("kern", "k1", 50, "ck", "Master", type="b"),
                                image("ami", "m0", 60, "c0", "Master", type="b", kernel_id="k1")] + [
        image(name, f"m{n}", 100 + n, f"c{n}", "Master", type="b") for n, name in enumerate(names, 1)]
    store.regions_["Burgos"] = []
    calls: list = []
    facades = []
    config = load_string(CONFIG + f"transfer_method = stream\nmax_copies = {max_copies}\n", environ={})

    def make(target):
        facades.append(MeetingFacade(MockFacade(target, store), calls, meet, fail))
        return facades[-1]

    return GlanceSync(config, make), store, calls, facades


def lines(caplog):
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("Burgos: ")]


def test_four_copies_run_at_once_and_the_output_is_the_sequential_runs(caplog):
    sequential, _, _, _ = world(max_copies=1, meet=1, names=("a", "b", "c"))
    with caplog.at_level(logging.INFO, "glancesync"):
        sequential.sync_region("Burgos")
    expected = [line.split(" in ")[0] for line in lines(caplog) if "Summary" not in line]
    caplog.clear()
    engine, store, calls, facades = world(max_copies=4, meet=4, names=("a", "b", "c"))  # ami, a, b, c meet
    with caplog.at_level(logging.INFO, "glancesync"):
        report = engine.sync_region("Burgos")
    facade = facades[-1]
    assert facade.most == 4 and report.uploads == 5
    got = [line.split(" in ")[0] for line in lines(caplog) if "Summary" not in line]
    assert got == expected  # plan order, each copy's lines together, facade lines included
    uploads = [args[1].name for name, args in calls if name == "upload_image"]
    assert uploads[0] == "kern"  # the kernel first, alone
    burgos = {i.name: i for i in store.regions_["Burgos"]}
    assert burgos["ami"].user_properties["kernel_id"] == burgos["kern"].id
    assert all(record.thread == threading.get_ident() for record in caplog.records)  # the region's thread


def test_max_copies_one_makes_one_copy_at_a_time():
    engine, _, _, facades = world(max_copies=1, meet=1)
    engine.sync_region("Burgos")
    assert facades[-1].most == 1


def test_a_failed_copy_stops_the_region_after_the_running_ones_end(caplog):
    engine, store, calls, facades = world(max_copies=2, meet=2, fail="a", names=("a", "b", "c", "d", "e"))
    with caplog.at_level(logging.INFO, "glancesync"), pytest.raises(TransferError, match="Upload of a Failed"):
        engine.sync_region("Burgos")
    copied = sorted(i.name for i in store.regions_["Burgos"])
    assert "a" not in copied and "e" not in copied  # nothing starts after the failure
    assert "Burgos: Summary: " in caplog.text and "(the region failed)" in caplog.text
