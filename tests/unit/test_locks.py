"""One run per region: a sync holds the region's lock; a second one is refused, a dry run is not."""

from __future__ import annotations

import multiprocessing
import os

import pytest

from fiwareglancesync.glancesync.config import default_lock_dir, load_string
from fiwareglancesync.glancesync.engine import GlanceSync
from fiwareglancesync.glancesync.errors import RegionLocked
from fiwareglancesync.glancesync.facades.mock import DirectoryStore, MockFacade
from fiwareglancesync.glancesync.image import read_backup_file, write_backup
from fiwareglancesync.glancesync.locks import region_lock
from tests.conf_factory import glancesync_conf
from tests.factories import image

IMAGES = 30


def seed(store_dir):
    master = [image(name=f"img{n:02d}", id=f"m{n}", region="Master", owner="tid", size=n) for n in range(IMAGES)]
    for region, images in (("Master", master), ("Burgos", [])):
        with open(os.path.join(store_dir, f"backup_{region}.csv"), "w", newline="") as stream:
            write_backup(images, stream)


def engine_for(store_dir, lock_dir):
    config = load_string(glancesync_conf({"lock_dir": lock_dir}), environ={})
    return GlanceSync(config, lambda target: MockFacade(target, DirectoryStore(store_dir)))


@pytest.fixture
def dirs(tmp_path):
    store, locks = tmp_path / "store", tmp_path / "locks"
    store.mkdir()
    seed(store)
    return str(store), str(locks)


def test_a_locked_region_is_refused_naming_the_holder_and_a_dry_run_still_works(dirs):
    store, locks = dirs
    engine = engine_for(store, locks)
    with region_lock(locks, "Burgos"):
        with pytest.raises(RegionLocked, match=rf"^Burgos: another sync of this region is running \(pid {os.getpid()}, "):
            engine.sync_region("Burgos")
        with pytest.raises(RegionLocked):
            engine.sync_region("master:Burgos")  # the same region, written the other way
        assert engine.sync_region("Burgos", dry_run=True).uploads == IMAGES
    assert read_backup_file(os.path.join(store, "backup_Burgos.csv")) == []
    assert engine.sync_region("Burgos").uploads == IMAGES  # released at the end of the block


def _sync_in_child(store, locks, barrier, results):
    engine = engine_for(store, locks)
    barrier.wait()
    try:
        report = engine.sync_region("Burgos")
        results.put(("synced", report.uploads))
    except RegionLocked:
        results.put(("locked", 0))


def test_concurrent_runs_never_copy_an_image_twice(dirs):
    store, locks = dirs
    context = multiprocessing.get_context("fork")
    runs = 6
    barrier, results = context.Barrier(runs), context.Queue()
    children = [context.Process(target=_sync_in_child, args=(store, locks, barrier, results)) for _ in range(runs)]
    for child in children:
        child.start()
    for child in children:
        child.join(30)
        assert child.exitcode == 0
    outcomes = [results.get(timeout=5) for _ in range(runs)]
    names = [i.name for i in read_backup_file(os.path.join(store, "backup_Burgos.csv"))]
    assert sorted(names) == sorted(f"img{n:02d}" for n in range(IMAGES)), "every image exactly once"
    assert sum(uploads for _, uploads in outcomes) == IMAGES
    assert {kind for kind, _ in outcomes} <= {"synced", "locked"}


def test_default_lock_dir_follows_xdg_runtime_dir():
    assert default_lock_dir({"XDG_RUNTIME_DIR": "/run/user/7"}) == "/run/user/7/glancesync"
    assert default_lock_dir({}) == f"/tmp/glancesync-{os.getuid()}"


def test_an_unusable_lock_dir_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(RegionLocked, match=r"^Burgos: cannot use the lock file .*/file/Burgos.lock: (File exists|Not a directory)$"):
        with region_lock(str(blocker), "Burgos"):
            pass
