"""Relay (README "How copies are made"): the sources of a pull in one run, the least used first,
``relay_fanout`` pulls at a time each, copies of the same Keystone only; through the engine, a
region pulls from the region synchronised before it, another Keystone's first region streams and
the next pulls from it, a failing source is dropped."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from fiwareglancesync.glancesync.config import load_string
from fiwareglancesync.glancesync.engine import GlanceSync
from fiwareglancesync.glancesync.facades.mock import MemoryStore, MockFacade
from fiwareglancesync.glancesync.region import Region
from fiwareglancesync.glancesync.relay import RelayBook, Source, TransferMethod, master_source
from tests.conf_factory import CREDENTIAL, glancesync_conf
from tests.unit.test_import_apply import ImportingFacade, image

MASTER = Region("master", "Master")
A, A2, B = Region("master", "RegionA"), Region("master", "RegionA2"), Region("other", "RegionB")


def later(seconds: float = 5.0) -> float:
    return time.monotonic() + seconds


def test_the_master_serves_first_then_the_least_used_verified_copy():
    book = RelayBook(MASTER)
    first = book.take("master", "m1", 1, later())
    assert first == master_source(MASTER, "m1")
    book.release(first)
    book.verified("master", "m1", A, "a1")
    second = book.take("master", "m1", 1, later())
    assert second == Source(A, "a1")  # unused, before the master (served once)
    book.release(second)
    book.verified("master", "m1", A2, "a2")
    assert book.take("master", "m1", 1, later()) == Source(A2, "a2")
    assert book.served(master_source(MASTER, "m1")) == 1


def test_each_source_serves_fanout_pulls_at_a_time_and_the_next_waits_for_one():
    book = RelayBook(MASTER)
    held = [book.take("master", "m1", 2, later()) for _ in range(2)]
    assert held == [master_source(MASTER, "m1")] * 2
    assert book.take("master", "m1", 2, time.monotonic() + 0.05) is None  # busy until the deadline
    got = []
    waiter = threading.Thread(target=lambda: got.append(book.take("master", "m1", 2, later())))
    waiter.start()
    book.verified("master", "m1", A, "a1")  # a new source frees the waiter
    waiter.join(5)
    assert got == [Source(A, "a1")]


def test_another_keystone_makes_its_first_copy_once_and_never_pulls_from_the_master():
    book = RelayBook(MASTER)
    assert book.take("other", "m1", 1, later()) is None  # this caller makes the Keystone's first copy
    book.verified("master", "m1", A, "a1")
    assert book.take("other", "m1", 1, time.monotonic() + 0.05) is None  # not across Keystones: waits
    got = []
    waiter = threading.Thread(target=lambda: got.append(book.take("other", "m1", 1, later())))
    waiter.start()
    book.verified("other", "m1", B, "b1")
    waiter.join(5)
    assert got == [Source(B, "b1")]


def test_a_first_copy_that_failed_lets_another_region_make_it():
    book = RelayBook(MASTER)
    assert book.take("other", "m1", 1, later()) is None
    book.unseed("other", "m1")
    assert book.take("other", "m1", 1, later()) is None  # this one makes it now


def test_a_failed_source_is_dropped_and_a_converted_copy_never_serves():
    book = RelayBook(MASTER)
    method = TransferMethod("auto", MASTER, relay=book, target="master")
    method.verified("m1", A, "a1", converted_ok=True)
    assert book.sources("master", "m1") == [master_source(MASTER, "m1")]
    method.verified("m1", A2, "a2", converted_ok=False)
    source = method.pick("m1", later())
    assert source == Source(A2, "a2")
    method.done(source, ok=False)
    assert book.sources("master", "m1") == [master_source(MASTER, "m1")]


def test_without_relay_imports_come_from_the_master_and_other_targets_stream():
    assert TransferMethod("auto", MASTER).pick("m1", later()) == master_source(MASTER, "m1")
    assert TransferMethod("auto", None).pick("m1", later()) is None
    assert not TransferMethod("auto", None).has_source("m1")


# ---------------------------------------------------------------- through the engine
def federation(relay: str = "true", **options):
    store = MemoryStore()
    store.regions_["Master"] = [image("img", "m1", 100, "c1", "Master", type="b")]
    for region in ("RegionA", "RegionA2", "RegionA3", "other:RegionB", "other:RegionB2"):
        store.regions_[region] = []
    calls: list = []
    text = glancesync_conf(relay=relay, **options) + "[other]\n" + "".join(f"{k} = {v}\n" for k, v in CREDENTIAL.items())
    text += f"relay = {relay}\n"
    engine = GlanceSync(load_string(text, environ={}), lambda target: ImportingFacade(MockFacade(target, store), calls))
    return engine, store, calls


def pulls(calls) -> list[tuple[str, str, str]]:
    """(region pulling, source region, source image id) of every import started."""
    return [(args[0].fullname, args[2].fullname, args[3]) for name, args in calls if name == "start_import"]


def test_a_sequential_run_pulls_from_the_region_synchronised_before():
    engine, store, calls = federation()
    for region in ("RegionA", "RegionA2", "RegionA3"):
        engine.sync_region(region)
    copy = {region: store.regions_[region][0].id for region in ("RegionA", "RegionA2")}
    assert pulls(calls) == [("RegionA", "Master", "m1"), ("RegionA2", "RegionA", copy["RegionA"]),
                            ("RegionA3", "RegionA2", copy["RegionA2"])]


def test_another_keystones_first_region_streams_and_the_next_pulls_from_it(caplog):
    engine, store, calls = federation()
    with caplog.at_level("INFO", "glancesync"):
        engine.sync_region("other:RegionB")
        engine.sync_region("other:RegionB2")
    assert "other:RegionB: img: no copy to pull from in this Keystone yet: streamed" in caplog.messages
    assert [name for name, args in calls if name == "upload_image"] == ["upload_image"]  # RegionB's stream
    assert pulls(calls) == [("other:RegionB2", "other:RegionB", store.regions_["other:RegionB"][0].id)]


def test_a_dry_run_says_what_the_run_would_do_another_keystones_second_region_pulls(caplog):
    engine, store, calls = federation()
    with caplog.at_level("INFO", "glancesync"):
        for region in ("other:RegionB", "other:RegionB2"):
            engine.sync_region(region, dry_run=True)
    assert "other:RegionB: img would be copied by stream" in caplog.messages
    assert "other:RegionB2: img would be copied by glance-download" in caplog.messages
    assert not [name for name, args in calls if name in ("upload_image", "start_import")]
    assert store.regions_["other:RegionB"] == store.regions_["other:RegionB2"] == []


class DecidedTogether(logging.Handler):
    """Holds each region's "would be copied by" line until both regions have said theirs: both
    decide before either goes on, the closest a test gets to two regions deciding at once."""

    def __init__(self):
        super().__init__()
        self.meeting = threading.Barrier(2, timeout=10)

    def handle(self, record):  # not emit: logging calls that under the handler's lock
        if " would be copied by " in record.getMessage():
            self.meeting.wait()
        return True

    def emit(self, record):
        pass


def test_a_dry_run_of_regions_at_once_says_one_streams_and_the_other_pulls(caplog):
    engine, store, calls = federation()
    together = DecidedTogether()
    logging.getLogger("glancesync.executor").addHandler(together)
    try:
        with caplog.at_level("INFO", "glancesync"):
            regions = [threading.Thread(target=engine.sync_region, args=(region,), kwargs={"dry_run": True})
                       for region in ("other:RegionB", "other:RegionB2")]
            for thread in regions:
                thread.start()
            for thread in regions:
                thread.join(10)
    finally:
        logging.getLogger("glancesync.executor").removeHandler(together)
    said = sorted(m.split(" would be copied by ")[1] for m in caplog.messages if " would be copied by " in m)
    assert said == ["glance-download", "stream"]


def test_without_relay_a_dry_run_says_another_keystones_regions_stream(caplog):
    engine, store, calls = federation(relay="false")
    with caplog.at_level("INFO", "glancesync"):
        for region in ("other:RegionB", "other:RegionB2"):
            engine.sync_region(region, dry_run=True)
    assert "other:RegionB2: img would be copied by stream" in caplog.messages


def test_without_relay_every_region_pulls_from_the_master_and_other_targets_stream():
    engine, store, calls = federation(relay="false")
    for region in ("RegionA", "RegionA2", "other:RegionB", "other:RegionB2"):
        engine.sync_region(region)
    assert pulls(calls) == [("RegionA", "Master", "m1"), ("RegionA2", "Master", "m1")]
    streamed = [args[0].fullname for name, args in calls if name == "upload_image"]
    assert streamed == ["other:RegionB", "other:RegionB2"]  # another Keystone without relay: streams only


@pytest.mark.parametrize("outcome", ["fail", "filtered"])  # filtered: Glance gives no reason, as for a dead source
def test_a_source_that_fails_a_pull_is_dropped_and_the_region_pulls_from_the_master(outcome, caplog):
    engine, store, calls = federation()
    engine.sync_region("RegionA")
    facade = engine.facade("master")
    facade.outcomes["img"] = outcome
    original = facade.finish_import

    def fail_from_regiona(region, image_id, copy, deadline=None, progress=None):
        source = [args for name, args in calls if name == "start_import"][-1][2]
        if source.name == "RegionA":
            return original(region, image_id, copy, deadline, progress)  # "fail": the copy deleted
        facade.outcomes.pop("img", None)
        return original(region, image_id, copy, deadline, progress)

    facade.finish_import = fail_from_regiona
    engine.sync_region("RegionA2")
    assert [source for _, source, _ in pulls(calls)] == ["Master", "RegionA", "Master"]
    assert len(store.regions_["RegionA2"]) == 1  # the failed pull's copy deleted, one copy made
    assert not [r for r in caplog.records if r.levelname == "WARNING"]  # not a failure of RegionA2's Glance


@pytest.mark.parametrize("outcome", ["alter", "interrupt"])
def test_a_pull_that_ends_in_another_failure_gives_its_source_back(outcome):
    """A copy the puller's Glance altered, or an interrupt, is no fault of the source: the source
    is free for the next pull at once (not busy until the next region's deadline), and kept."""
    engine, store, calls = federation(import_timeout=3)
    facade = engine.facade("master")
    facade.outcomes["img"] = outcome
    with pytest.raises(BaseException):
        engine.sync_region("RegionA")
    facade.outcomes.clear()
    began = time.monotonic()
    engine.sync_region("RegionA2")
    assert time.monotonic() - began < 2  # a leaked source would hold the pull for the whole deadline
    assert pulls(calls)[-1] == ("RegionA2", "Master", "m1")


def test_a_region_whose_sources_stay_busy_until_its_deadline_streams_and_says_why(caplog):
    engine, store, calls = federation(import_timeout=1)
    facade = engine.facade("master")
    original, pulling, go_on = facade.finish_import, threading.Event(), threading.Event()

    def slow_for_regiona(region, image_id, copy, deadline=None, progress=None):
        if region.fullname == "RegionA":
            pulling.set()
            go_on.wait(10)
        return original(region, image_id, copy, deadline, progress)

    facade.finish_import = slow_for_regiona
    first = threading.Thread(target=engine.sync_region, args=("RegionA",))
    first.start()
    try:
        assert pulling.wait(10)
        with caplog.at_level("INFO", "glancesync"):
            engine.sync_region("RegionA2")  # the master serves one pull at a time (relay_fanout 1)
    finally:
        go_on.set()
        first.join(10)
    assert ("RegionA2: img: every copy to pull from stayed busy until the region's import deadline: streamed"
            in caplog.messages)
    assert [args[0].fullname for name, args in calls if name == "upload_image"] == ["RegionA2"]
