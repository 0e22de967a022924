"""transfer_method (README "How copies are made") through the engine and the executor, against the
mock store
behind a facade double that can import: which method each region uses, the waves of imports
(kernels first, then the rest, ``max_copies`` at a time, with one deadline for the region), the
fallback of ``auto`` to streaming, a region whose Glance alters the data, the clean-up of started
imports, and what a dry run says."""

from __future__ import annotations

import logging
import pytest

from fiwareglancesync.glancesync.config import load_string
from fiwareglancesync.glancesync.engine import GlanceSync
from fiwareglancesync.glancesync.errors import ImportAltered, ImportFailed, TransferError
from fiwareglancesync.glancesync.facades.base import GLANCE_DOWNLOAD, Uploaded
from fiwareglancesync.glancesync.facades.mock import MemoryStore, MockFacade
from tests.unit.test_plan_apply import CONFIG, RecordingFacade, image


class Empty:
    description = "nothing"

    def open(self):
        return iter(())


class ImportingFacade(RecordingFacade):
    """The mock plus imports: ``start_import`` creates the copy (as the mock records one),
    ``finish_import`` answers per ``outcomes[name]``: ok (default), fail, refuse (at the start),
    alter, interrupt."""

    def __init__(self, inner, calls, methods=frozenset({GLANCE_DOWNLOAD}), outcomes=None):
        super().__init__(inner, calls)
        self.methods = methods
        self.outcomes = outcomes if outcomes is not None else {}
        self.deadlines: list = []

    def import_methods(self, region):
        self.calls.append(("import_methods", (region,)))
        return self.methods
    def start_import(self, region, copy, source_region, source_image_id):
        self.calls.append(("start_import", (region, copy, source_region, source_image_id)))
        if self.outcomes.get(copy.name) == "refuse":
            raise ImportFailed(f"{region.fullname}: Import of {copy.name} Failed. Cause: Glance refused the import: "
                               "HTTP 409", region.fullname, "Glance refused the import: HTTP 409")
        return self.inner.upload_image(region, copy, Empty()).image_id

    def finish_import(self, region, image_id, copy, deadline=None, progress=None):
        self.calls.append(("finish_import", (region, image_id, copy)))
        self.deadlines.append(deadline)
        outcome = self.outcomes.get(copy.name, "ok")
        if outcome == "ok":
            return Uploaded(image_id, 0, GLANCE_DOWNLOAD)
        self.inner.delete_image(region, image_id)  # the facade's contract: no copy left behind
        if outcome == "fail":
            reason = "the region's Glance failed the import (image queued, task: URI does not pass filtering)"
            raise ImportFailed(f"{region.fullname}: Import of {copy.name} Failed. Cause: {reason}",
                               region.fullname, reason)
        if outcome == "filtered":  # the region's Glance fails the import itself, as for every image
            reason = "the region's Glance failed the import (image queued, task: Task failed due to Internal Error)"
            raise ImportFailed(f"{region.fullname}: Import of {copy.name} Failed. Cause: {reason}",
                               region.fullname, reason, region_wide=True)
        if outcome == "alter":
            raise ImportAltered(f"{region.fullname}: Import of {copy.name} Failed. Cause: the region's Glance "
                                "changed the data on import (...): set transfer_method = stream for target master",
                                region.fullname)
        raise KeyboardInterrupt()


def world(method="auto", max_copies=1, **facade_options):
    store = MemoryStore()
    store.regions_["Master"] = [
        image("kern", "m1", 500, "ck", "Master", type="b"),
        image("ami", "m2", 100, "ca", "Master", type="b", kernel_id="m1"),
        image("rep", "m4", 300, "c4", "Master", type="b"),
        image("plain", "m5", 310, "c5", "Master", type="b"),
    ]
    store.regions_["Burgos"] = [image("rep", "r4", 300, "cX", "Burgos", type="b")]
    calls: list = []
    config = load_string(CONFIG + f"transfer_method = {method}\nmax_copies = {max_copies}\n", environ={})
    engine = GlanceSync(config, lambda target: ImportingFacade(MockFacade(target, store), calls, **facade_options))
    return engine, store, calls


def steps(calls):
    """(call, image name or id) of the writes and imports, in order."""
    out = []
    for name, args in calls:
        if name in ("start_import", "upload_image", "update_metadata"):
            out.append((name, args[1].name))
        elif name == "finish_import":
            out.append((name, args[2].name))
        elif name == "delete_image":
            out.append((name, args[1]))
    return out


def test_auto_imports_kernels_first_then_the_rest_with_one_deadline_for_the_region(caplog):
    engine, store, calls = world()
    with caplog.at_level(logging.INFO, "glancesync"):
        report = engine.sync_region("Burgos")
    assert steps(calls) == [
        ("start_import", "kern"), ("finish_import", "kern"),  # wave 1: what the AMI references
        ("start_import", "ami"), ("finish_import", "ami"),  # max_copies = 1: one after another
        ("start_import", "rep"), ("finish_import", "rep"), ("delete_image", "r4"),
        ("start_import", "plain"), ("finish_import", "plain"),
    ]
    facade = engine.facade("master")
    assert len(set(facade.deadlines)) == 1 and None not in facade.deadlines  # the region's one deadline
    started = [args for name, args in calls if name == "start_import"]
    assert {(a[2].fullname, a[3]) for a in started} == {("Master", "m1"), ("Master", "m2"), ("Master", "m4"),
                                                         ("Master", "m5")}
    burgos = {i.name: i for i in store.regions_["Burgos"]}
    assert burgos["ami"].user_properties["kernel_id"] == burgos["kern"].id
    assert [c for c in calls if c[0] == "import_methods"] != [] and len(
        [c for c in calls if c[0] == "import_methods"]) == 1
    assert report.uploads_by_method == {GLANCE_DOWNLOAD: 4} and report.bytes_transferred == 0
    text = caplog.text
    assert "Burgos: kern: copied by glance-download from image m1 of region Master in " in text
    assert "(0 bytes sent by this client)" in text
    assert "Burgos: Summary: 4 images uploaded (0.0 MB, 4 by glance-download), 0 bytes sent in " in text
    assert "(average rate n/a), 1210 bytes pulled server-side, 0 metadata updates" in text  # 500+100+300+310
    assert report.bytes_pulled == 1210
    assert all(e.status.value == "ok" for e in engine.region_status("Burgos"))


def test_a_failed_import_under_auto_is_streamed_once_with_a_warning(caplog):
    engine, store, calls = world(outcomes={"rep": "fail", "plain": "refuse"})
    with caplog.at_level(logging.INFO, "glancesync"):
        report = engine.sync_region("Burgos")
    assert ("upload_image", "rep") in steps(calls) and ("upload_image", "plain") in steps(calls)
    assert report.uploads_by_method == {GLANCE_DOWNLOAD: 2, "record": 2}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert ("Burgos: the glance-download import of rep failed (the region's Glance failed the import (image "
            "queued, task: URI does not pass filtering)); the image is streamed instead") in warnings
    assert ("Burgos: the glance-download import of plain failed (Glance refused the import: HTTP 409); "
            "the image is streamed instead") in warnings
    names = sorted(i.name for i in store.regions_["Burgos"])
    assert names == ["ami", "kern", "plain", "rep"]  # one copy each: no import leftover
    assert all(e.status.value == "ok" for e in engine.region_status("Burgos"))


def test_a_failed_kernel_import_is_streamed_before_the_ami_is_created():
    engine, store, calls = world(outcomes={"kern": "fail"})
    engine.sync_region("Burgos")
    assert steps(calls)[:4] == [("start_import", "kern"), ("finish_import", "kern"), ("upload_image", "kern"),
                                ("start_import", "ami")]
    burgos = {i.name: i for i in store.regions_["Burgos"]}
    assert burgos["ami"].user_properties["kernel_id"] == burgos["kern"].id


def test_explicit_glance_download_does_not_fall_back_and_stops_the_region():
    engine, store, calls = world(method="glance-download", outcomes={"ami": "fail"})
    with pytest.raises(ImportFailed, match="Burgos: Import of ami Failed"):
        engine.sync_region("Burgos")
    assert not any(name == "upload_image" for name, _ in steps(calls))
    assert ("start_import", "rep") not in steps(calls)  # nothing starts after the failure
    assert sorted(i.name for i in store.regions_["Burgos"]) == ["kern", "rep"]  # kern finished; rep's old image


def test_data_altered_on_import_fails_the_region_and_leaves_nothing():
    engine, store, calls = world(outcomes={"ami": "alter"})
    with pytest.raises(ImportAltered) as caught:
        engine.sync_region("Burgos")
    assert "changed the data on import" in str(caught.value) and "transfer_method = stream" in str(caught.value)
    assert isinstance(caught.value, TransferError)
    assert not any(name == "upload_image" for name, _ in steps(calls))  # never streamed silently
    assert sorted(i.name for i in store.regions_["Burgos"]) == ["kern", "rep"]


def test_an_interrupt_while_awaiting_leaves_no_started_import():
    engine, store, calls = world(outcomes={"ami": "interrupt"}, max_copies=4)
    with pytest.raises(KeyboardInterrupt):
        engine.sync_region("Burgos")
    # ami's copy deleted by the facade (its contract); rep and plain, running beside it, finished
    burgos = sorted(i.name for i in store.regions_["Burgos"])
    assert "ami" not in burgos and burgos.count("rep") == 1
    started = {name for name, _ in steps(calls) if name == "start_import"}
    assert started and all(("finish_import", n) in steps(calls) for k, n in steps(calls) if k == "start_import")


def test_a_region_that_does_not_advertise_it_streams():
    engine, store, calls = world(methods=frozenset({"glance-direct"}))
    report = engine.sync_region("Burgos")
    assert report.uploads_by_method == {"record": 4}
    assert not any(name in ("start_import", "finish_import") for name, _ in calls)


def test_stream_asks_nothing_and_other_targets_never_import():
    engine, store, calls = world(method="stream")
    engine.sync_region("Burgos")
    assert not any(name in ("import_methods", "start_import") for name, _ in calls)
    method = engine.transfer_method(engine.region("other:Burgos")) if "other" in engine.config.targets else None
    assert method is None or method.import_from is None


def test_dry_run_says_which_method_each_upload_would_use(caplog):
    engine, store, calls = world()
    with caplog.at_level(logging.INFO, "glancesync"):
        engine.sync_region("Burgos", dry_run=True)
    assert not any(name in ("start_import", "finish_import", "upload_image") for name, _ in calls)
    assert "Burgos: Pending: kern (" in caplog.text
    assert "Burgos: kern would be copied by glance-download" in caplog.text


def test_dry_run_of_a_region_without_it_says_stream(caplog):
    engine, store, calls = world(methods=frozenset())
    with caplog.at_level(logging.INFO, "glancesync"):
        engine.sync_region("Burgos", dry_run=True)
    assert "Burgos: kern would be copied by stream" in caplog.text


def test_a_region_whose_glance_fails_imports_is_told_once_and_its_images_are_streamed(caplog):
    engine, store, calls = world(outcomes={"kern": "filtered", "ami": "filtered", "rep": "filtered",
                                           "plain": "filtered"})
    with caplog.at_level(logging.INFO, "glancesync"):
        report = engine.sync_region("Burgos")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["Burgos: the glance-download import of kern failed (the region's Glance failed the import "
                        "(image queued, task: Task failed due to Internal Error)); this run streams the region's "
                        "images instead"]
    # the first wave's failure is told once; the second wave does not try glance-download again
    assert [step for step in steps(calls) if step[0] == "start_import"] == [("start_import", "kern")]
    assert report.uploads_by_method == {"record": 4}
    names = sorted(i.name for i in store.regions_["Burgos"])
    assert names == ["ami", "kern", "plain", "rep"]  # one copy each: no import leftover


def test_imports_after_a_region_wide_failure_are_not_tried(caplog):
    engine, store, calls = world(outcomes={"rep": "filtered", "plain": "filtered"})
    with caplog.at_level(logging.INFO, "glancesync"):
        report = engine.sync_region("Burgos")
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "Burgos: the glance-download import of rep failed (the region's Glance failed the import (image queued, "
        "task: Task failed due to Internal Error)); this run streams the region's images instead"]
    assert ("start_import", "plain") not in steps(calls)  # streamed without trying
    assert report.uploads_by_method == {GLANCE_DOWNLOAD: 2, "record": 2}
    assert sorted(i.name for i in store.regions_["Burgos"]) == ["ami", "kern", "plain", "rep"]
