"""Leftovers (README "Leftovers of interrupted runs"): the holder of a region's lock deletes every
unfinished copy that is not one of its own live runs', whatever host made it and however young it
is, one WARNING each, before it plans; a dry run lists them; nothing else is ever deleted this way."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, timezone

import pytest

from fiwareglancesync.glancesync.config import load_string
from fiwareglancesync.glancesync.engine import GlanceSync
from fiwareglancesync.glancesync.facades.mock import MemoryStore, MockFacade
from fiwareglancesync.glancesync.identity import Marker, ProcessIdentity, current_marker, run
from fiwareglancesync.glancesync.image import IN_PROGRESS
from fiwareglancesync.glancesync.leftovers import find_leftovers
from fiwareglancesync.glancesync.status import compare
from tests.conf_factory import glancesync_conf
from tests.factories import image

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)
LIVE_RUN = "live-run"


def me() -> ProcessIdentity:
    return ProcessIdentity.current()


def dead_here() -> str:
    """A process of this host and boot that no longer exists (pid beyond pid_max)."""
    return str(Marker(ProcessIdentity(me().host, me().boot_id, 2 ** 22 + 7, "12345"), "r-dead"))


def other_host() -> str:
    return str(Marker(ProcessIdentity("elsewhere.example", "b00t", 42, "99"), "r-there"))


def copy(id_, marker, status="queued", created=None, owner="tid", name="img"):
    props = {IN_PROGRESS: marker} if marker else {}
    return image(name=name, id=id_, region="Burgos", status=status, owner=owner, checksum=None,
                 created_at=created, user_properties=props)


@pytest.mark.parametrize("candidate,expected", [
    pytest.param(copy("r1", dead_here()), True, id="dead process of this host"),
    pytest.param(copy("r1", str(Marker(ProcessIdentity(me().host, "older-boot", me().pid, me().start), "r"))), True,
                 id="this host rebooted since"),
    pytest.param(copy("r1", str(Marker(me(), LIVE_RUN))), False, id="a live run of this process: kept"),
    pytest.param(copy("r1", str(Marker(me(), "ended-run"))), True,
                 id="a run of this process that ended (a failed REST task of this worker)"),
    pytest.param(copy("r1", str(me())), True, id="this process, marker without a run (older version)"),
    pytest.param(copy("r1", other_host(), created=(NOW - timedelta(minutes=5)).isoformat()), True,
                 id="other host, young"),
    pytest.param(copy("r1", other_host()), True, id="other host, no creation date"),
    pytest.param(copy("r1", str(ProcessIdentity("elsewhere.example", "b00t", 42, "99"))), True,
                 id="other host, marker without a run"),
    pytest.param(copy("r1", None), False, id="no marker: never"),
    pytest.param(copy("r1", dead_here(), status="active"), False, id="active: never"),
    pytest.param(copy("r1", dead_here(), owner="stranger"), False, id="another project's: never"),
    pytest.param(copy("r1", "not an identity"), False, id="unreadable marker: kept"),
])
def test_what_counts_as_a_leftover(candidate, expected):
    with run(LIVE_RUN):
        assert (find_leftovers([candidate], "tid") == [candidate]) is expected


def test_markers_read_back_and_only_open_runs_are_live():
    with run("a") as outer:
        marker = current_marker()
        assert outer == "a" and Marker.parse(str(marker)) == marker == Marker(me(), "a")
        with run() as inner:
            assert inner == "a"  # a sync inside a task is the task's run
        assert marker.is_live_here()
    assert not marker.is_live_here()
    assert Marker.parse(str(me())) == Marker(me(), "")
    assert Marker.parse("x/y") is None


def test_the_marker_never_counts_in_a_status_comparison():
    master = image(name="img", id="m1", type="b")
    assert compare(image(name="img", id="r1", type="b", **{IN_PROGRESS: "x"}), master, frozenset()) == ""


@pytest.fixture
def world(tmp_path):
    store = MemoryStore()
    store.regions_["Master"] = [image(name="img", id="m1", region="Master", owner="tid", size=5, checksum="c1")]
    store.regions_["Burgos"] = [copy("left", dead_here()), copy("busy", str(Marker(me(), LIVE_RUN)), name="other"),
                                copy("plain", None, name="third"),
                                copy("young", other_host(), created=datetime.now(timezone.utc).isoformat(),
                                     name="fourth")]
    config = load_string(glancesync_conf({"lock_dir": tmp_path}), environ={})
    engine = GlanceSync(config, lambda target: MockFacade(target, store))
    return engine, store


def test_a_sync_deletes_the_leftovers_of_ended_runs_of_any_host_with_one_warning_each_then_copies_once(world, caplog):
    engine, store = world
    reports = []
    with caplog.at_level(logging.INFO, "glancesync"), run(LIVE_RUN):  # another run of this process, still open
        worker = threading.Thread(target=lambda: reports.append(engine.sync_region("Burgos")))
        worker.start()
        worker.join(30)
    [report] = reports
    ids = [i.id for i in store.regions_["Burgos"]]
    assert "left" not in ids and "young" not in ids and "busy" in ids and "plain" in ids
    assert [i.name for i in store.regions_["Burgos"]].count("img") == 1 and report.uploads == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"Burgos: image img (UUID left, queued) is a leftover of {dead_here()}: deleting it",
                        f"Burgos: image fourth (UUID young, queued) is a leftover of {other_host()}: deleting it"]


def test_leftover_max_age_is_still_accepted_with_a_note(tmp_path):
    config = load_string(glancesync_conf({"lock_dir": tmp_path}, leftover_max_age=3600), environ={}, source="g.conf")
    assert config.notes == ("g.conf: [master] leftover_max_age: retired: the holder of a region's lock deletes "
                            "every unfinished copy of a run that ended, whatever its age, ignored",)


def test_a_dry_run_lists_the_leftover_and_deletes_nothing(world, caplog):
    engine, store = world
    before = list(store.regions_["Burgos"])
    with caplog.at_level(logging.INFO, "glancesync"):
        engine.sync_region("Burgos", dry_run=True)
    assert store.regions_["Burgos"] == before
    assert f"Burgos: image img (UUID left, queued) is a leftover of {dead_here()}: it would be deleted" in caplog.text


def test_an_exited_process_not_yet_reaped_counts_as_gone():
    import os
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    # Wait until it has exited, leaving it a zombie (WNOWAIT: not reaped yet).
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
    identity = ProcessIdentity(me().host, me().boot_id, child.pid, "irrelevant")
    try:
        assert identity.is_running() is False
    finally:
        child.wait()
