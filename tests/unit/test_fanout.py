"""FanOut (read once, fan out): regions that stream the same image share one read of its source,
memory bounded; a stalled member is cut loose, a failing source fails every member, a second
open (a retry) reads alone, a region that does not need the image is not waited for."""

from __future__ import annotations

import threading

import pytest

from fiwareglancesync.glancesync.errors import TransferError
from fiwareglancesync.glancesync.fanout import DEPTH, FanOut

PIECES = [bytes([i]) * 1000 for i in range(20)]


class Source:
    description = "test source"

    def __init__(self, pieces=PIECES, fail_at=None):
        self.pieces, self.fail_at, self.opens = pieces, fail_at, 0

    def open(self):
        self.opens += 1

        def chunks():
            for index, piece in enumerate(self.pieces):
                if index == self.fail_at:
                    raise TransferError("master went away")
                yield piece
        return chunks()


def read_all(fanout, region, source, results, image_id="X"):
    try:
        results[region] = b"".join(fanout.source(region, image_id, source).open())
    except BaseException as exc:  # noqa: BLE001 - the test looks at it
        results[region] = exc


def run(fanout, regions, source):
    results: dict = {}
    threads = [threading.Thread(target=read_all, args=(fanout, r, source, results)) for r in regions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return results


def test_regions_streaming_the_same_image_share_one_read():
    fanout, source = FanOut(), Source()
    for region in ("A", "B", "C"):
        fanout.started(region)
        fanout.planned(region, ["X"])
    results = run(fanout, ["A", "B", "C"], source)
    assert source.opens == 1 and fanout.reads == {"X": 1}
    assert results == {r: b"".join(PIECES) for r in "ABC"}


def test_a_region_still_planning_is_waited_for():
    fanout, source = FanOut(), Source()
    fanout.started("A")
    fanout.started("B")
    fanout.planned("A", ["X"])
    results: dict = {}
    first = threading.Thread(target=read_all, args=(fanout, "A", source, results))
    first.start()
    first.join(0.3)
    assert first.is_alive() and source.opens == 0  # A waits: B may need X
    fanout.planned("B", ["X"])
    read_all(fanout, "B", source, results)
    first.join(10)
    assert source.opens == 1 and results["A"] == results["B"] == b"".join(PIECES)


def test_a_region_that_does_not_need_it_or_is_done_is_not_waited_for():
    fanout, source = FanOut(), Source()
    fanout.started("A")
    fanout.planned("A", ["X"])
    fanout.started("B")
    fanout.planned("B", ["Y"])
    fanout.started("C")
    fanout.done("C")  # failed while planning
    results = run(fanout, ["A"], source)
    assert results["A"] == b"".join(PIECES) and source.opens == 1


def test_a_stalled_member_is_cut_loose_and_the_others_go_on():
    fanout, source = FanOut(stall_timeout=0.3), Source()
    for region in ("A", "B"):
        fanout.started(region)
        fanout.planned(region, ["X"])
    results: dict = {}
    stalled_iter = []

    def stalled():
        chunks = fanout.source("B", "X", source).open()
        stalled_iter.append(chunks)
        next(chunks)  # takes one piece, then its Glance stops reading
    b = threading.Thread(target=stalled)
    b.start()
    read_all(fanout, "A", source, results)
    b.join(10)
    assert results["A"] == b"".join(PIECES)
    with pytest.raises(TransferError, match="B took no data for 0 s: dropped from the fan-out"):
        for _ in stalled_iter[0]:  # what B's upload sees when it reads again: the queued pieces, then the error
            pass
    assert source.opens == 1


def test_a_failing_source_fails_every_member():
    fanout, source = FanOut(), Source(fail_at=5)
    for region in ("A", "B"):
        fanout.started(region)
        fanout.planned(region, ["X"])
    results = run(fanout, ["A", "B"], source)
    assert all(isinstance(results[r], TransferError) and "master went away" in str(results[r]) for r in "AB")


def test_a_member_that_stops_early_leaves_and_a_retry_reads_alone():
    fanout, source = FanOut(), Source()
    for region in ("A", "B"):
        fanout.started(region)
        fanout.planned(region, ["X"])
    results: dict = {}

    def quits():
        chunks = fanout.source("B", "X", source).open()
        next(chunks)
        chunks.close()  # its upload failed
        read_all(fanout, "B", source, results)  # the facade's retry opens again: alone
    b = threading.Thread(target=quits)
    b.start()
    read_all(fanout, "A", source, results)
    b.join(10)
    assert results["A"] == results["B"] == b"".join(PIECES)
    assert source.opens == 2 and fanout.reads == {"X": 2}


def test_an_interrupt_stops_a_waiting_region():
    class Stop(BaseException):
        pass
    stop: list = []
    fanout = FanOut(cancelled=lambda: stop[0] if stop else None)
    fanout.started("A")
    fanout.started("B")  # never plans: A waits for it
    fanout.planned("A", ["X"])
    results: dict = {}
    a = threading.Thread(target=read_all, args=(fanout, "A", Source(), results))
    a.start()
    stop.append(Stop())
    a.join(10)
    assert isinstance(results["A"], Stop)


def test_memory_is_bounded_per_member():
    assert DEPTH <= 8
