"""Leftovers (README "Leftovers of interrupted runs"): a sync deletes the unfinished copies of runs
that are provably gone,
one WARNING each, before it plans; a dry run lists them; nothing else is ever deleted this way."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest

from fiwareglancesync.glancesync.config import load_string
from fiwareglancesync.glancesync.engine import GlanceSync
from fiwareglancesync.glancesync.facades.mock import MemoryStore, MockFacade
from fiwareglancesync.glancesync.identity import ProcessIdentity
from fiwareglancesync.glancesync.image import IN_PROGRESS
from fiwareglancesync.glancesync.leftovers import find_leftovers
from fiwareglancesync.glancesync.status import compare
from tests.conf_factory import glancesync_conf
from tests.factories import image

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)


def me() -> ProcessIdentity:
    return ProcessIdentity.current()


def dead_here() -> str:
    """A process of this host and boot that no longer exists (pid beyond pid_max)."""
    return str(ProcessIdentity(me().host, me().boot_id, 2 ** 22 + 7, "12345"))


def other_host() -> str:
    return str(ProcessIdentity("elsewhere.example", "b00t", 42, "99"))


def copy(id_, marker, status="queued", created=None, owner="tid", name="img"):
    props = {IN_PROGRESS: marker} if marker else {}
    return image(name=name, id=id_, region="Burgos", status=status, owner=owner, checksum=None,
                 created_at=created, user_properties=props)


@pytest.mark.parametrize("candidate,expected", [
    pytest.param(copy("r1", dead_here()), True, id="dead process of this host"),
    pytest.param(copy("r1", str(ProcessIdentity(me().host, "older-boot", me().pid, me().start))), True,
                 id="this host rebooted since"),
    pytest.param(copy("r1", str(me())), False, id="creator still running (another run in progress)"),
    pytest.param(copy("r1", other_host(), created=(NOW - timedelta(hours=2)).isoformat()), True,
                 id="other host, older than leftover_max_age"),
    pytest.param(copy("r1", other_host(), created=(NOW - timedelta(minutes=5)).isoformat()), False,
                 id="other host, young"),
    pytest.param(copy("r1", other_host()), False, id="other host, no creation date"),
    pytest.param(copy("r1", None), False, id="no marker: never"),
    pytest.param(copy("r1", dead_here(), status="active"), False, id="active: never"),
    pytest.param(copy("r1", dead_here(), owner="stranger"), False, id="another project's: never"),
    pytest.param(copy("r1", "not an identity"), False, id="unreadable marker: kept"),
])
def test_what_counts_as_a_leftover(candidate, expected):
    assert (find_leftovers([candidate], "tid", 3600, now=NOW) == [candidate]) is expected


def test_the_marker_never_counts_in_a_status_comparison():
    master = image(name="img", id="m1", type="b")
    assert compare(image(name="img", id="r1", type="b", **{IN_PROGRESS: "x"}), master, frozenset()) == ""


@pytest.fixture
def world(tmp_path):
    store = MemoryStore()
    store.regions_["Master"] = [image(name="img", id="m1", region="Master", owner="tid", size=5, checksum="c1")]
    store.regions_["Burgos"] = [copy("left", dead_here()), copy("busy", str(me()), name="other"),
                                copy("plain", None, name="third")]
    config = load_string(glancesync_conf({"lock_dir": tmp_path}, leftover_max_age=3600), environ={})
    engine = GlanceSync(config, lambda target: MockFacade(target, store))
    return engine, store


def test_a_sync_deletes_the_leftover_with_one_warning_then_copies_once(world, caplog):
    engine, store = world
    with caplog.at_level(logging.INFO, "glancesync"):
        report = engine.sync_region("Burgos")
    ids = [i.id for i in store.regions_["Burgos"]]
    assert "left" not in ids and "busy" in ids and "plain" in ids
    assert [i.name for i in store.regions_["Burgos"]].count("img") == 1 and report.uploads == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"Burgos: image img (UUID left, queued) is a leftover of {dead_here()}: deleting it"]


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
