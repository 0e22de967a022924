"""--parallel: the fan-out waits for each region as long as its own target's ``http_timeout``
allows (README "How copies are made"), not the first region's."""

from __future__ import annotations

import base64
import io
import threading

import pytest

from fiwareglancesync import parallel
from fiwareglancesync.glancesync import GlanceSync
from fiwareglancesync.glancesync.errors import TransferError
from fiwareglancesync.glancesync.fanout import FanOut
from tests.cli.inprocess import clean_environ

B64 = base64.b64encode(b"pw").decode()


def test_each_region_of_a_parallel_run_has_its_own_targets_timeout(tmp_path, monkeypatch):
    store = tmp_path / "store"
    store.mkdir()
    (store / "backup_Master.csv").write_text("Master,img,m1,active,10,c1,tenantid,True,{}\r\n")
    conf = tmp_path / "glancesync.conf"
    conf.write_text(f"[main]\nmaster_region = Master\nlock_dir = {tmp_path / 'locks'}\n"
                    f"[master]\ncredential = u,{B64},http://k/v3,tenant\ntenant_id = tenantid\nhttp_timeout = 40\n"
                    f"[other]\ncredential = u2,{B64},http://k2/v3,tenant2\nhttp_timeout = 5\n")
    built: list[FanOut] = []

    class RecordedFanOut(FanOut):
        def __init__(self, **options):
            super().__init__(**options)
            built.append(self)

    monkeypatch.setattr(parallel, "FanOut", RecordedFanOut)
    engine = GlanceSync.from_environment(environ=clean_environ(GLANCESYNC_CONFIG=str(conf),
                                                               GLANCESYNC_MOCKPERSISTENT_PATH=str(store)))

    parallel.run_parallel(engine, ["Trento", "other:Burgos"], max_children=2, dry_run=True, out=io.StringIO(),
                          directory=str(tmp_path))

    [fanout] = built
    timeouts = getattr(fanout, "region_timeouts", {})
    seconds = {region: timeouts.get(region, fanout.stall_timeout) for region in ("Trento", "other:Burgos")}
    assert seconds == {"Trento": 40.0, "other:Burgos": 5.0}


def test_a_member_is_cut_loose_after_its_own_regions_timeout():
    fanout = FanOut(stall_timeout=60, wait_timeout=60, region_timeouts={"B": 0.3})
    for region in ("A", "B"):
        fanout.started(region)
        fanout.planned(region, ["X"])

    class Source:
        description = "test source"

        def open(self):
            return iter([b"x" * 10] * 20)

    stalled_chunks = []

    def stalled():
        chunks = fanout.source("B", "X", Source()).open()
        stalled_chunks.append(chunks)
        next(chunks)  # takes one piece, then its Glance stops reading

    b = threading.Thread(target=stalled)
    b.start()
    assert b"".join(fanout.source("A", "X", Source()).open()) == b"x" * 200
    b.join(10)
    with pytest.raises(TransferError, match="B took no data for 0 s: dropped from the fan-out"):
        for _ in stalled_chunks[0]:
            pass
