"""Relay on the real lab (README "How copies are made"): a federation of Master plus three regions
on the first Keystone and two on the second.  The Glances' own request logs (uWSGI's) say who
served each image's data: with relay the master serves one pull of each image at a time (once in a
sequential run) plus the client's read for the second Keystone, each region of the first Keystone
pulls from a region synchronised before it, the second Keystone's first region gets the
image streamed and its other region pulls it from there; every copy holds the master's data."""

from __future__ import annotations

import os

import pytest

from tests.integration.lab import start_lab
from tests.integration.lab.images import LabImages, same_data
from tests.integration.lab.model import federation

FIRST = ("RegionA", "RegionA2", "RegionA3")
SECOND = ("RegionB", "RegionB2")


@pytest.fixture(scope="module")
def fed_lab():
    lab = start_lab(glances=federation(3, 2))
    yield lab
    lab.stop()


class Federation(LabImages):
    def __init__(self, lab, tmp_path):
        super().__init__(lab, tmp_path, "rl")
        self.write_config()

    def write_config(self, main: dict | None = None, **options) -> None:
        condition = f"image.is_public and image.name.startswith('{self.prefix}')"
        common = {"metadata_condition": condition, **options}
        self.lab.write_glancesync_conf(self.config, main={"lock_dir": str(self.tmp / "locks"), **(main or {})},
                                       master=common, target=common)

    def served(self, region: str, image_id: str) -> int:
        """How many times ``region``'s Glance served the data of its image ``image_id``."""
        log = self.lab.state_dir / self.lab.glances[region].name / "uwsgi.log"
        return log.read_text(errors="replace").count(f"GET /v2/images/{image_id}/file ")


@pytest.fixture
def fed(fed_lab, tmp_path):
    made = Federation(fed_lab, tmp_path)
    yield made
    made.cleanup()


@pytest.mark.parametrize("parallel", [False, True], ids=["sequential", "parallel"])
def test_with_relay_each_image_crosses_each_link_once(fed, parallel):
    masters = [fed.create(f"img{n}", os.urandom((256 + n) * 1024), type="base") for n in range(2)]
    regions = [*FIRST, *(f"other:{region}" for region in SECOND)]
    fed.write_config(main={"max_children": "5"} if parallel else None)
    result = fed.sync_py(*(["--parallel"] if parallel else []), *regions)
    assert result.returncode == 0, result.stderr
    for n, master in enumerate(masters):
        copies = {region: fed.only(region, f"img{n}") for region in (*FIRST, *SECOND)}
        for region, copy in copies.items():
            same_data(copy, master)
        # the master served each image relay_fanout (1) pulls at a time: one pull in a sequential
        # run, in waves under --parallel (one, then one more while RegionA serves the third);
        # plus the client's one read for the second Keystone's stream
        master_pulls = fed.served("Master", master["id"]) - 1
        assert master_pulls == (2 if parallel else 1), n
        assert sum(fed.served(region, copies[region]["id"]) for region in FIRST) == len(FIRST) - master_pulls
        # the second Keystone: one stream from the client (to whichever region came first), the
        # other region pulls it from there
        assert sorted(fed.served(region, copies[region]["id"]) for region in SECOND) == [0, 1]
    output = result.stderr + "".join(path.read_text() for path in fed.tmp.glob("sync_*/*.txt"))
    streamed = [line.removeprefix("INFO:") for line in output.splitlines()
                if "no copy to pull from in this Keystone yet: streamed" in line]
    assert len(streamed) == 2 and all(line.startswith(("other:RegionB: ", "other:RegionB2: ")) for line in streamed)
    assert fed.status(*regions) == {f"{region}/img{n}": "ok" for region in regions for n in range(2)}


def test_without_relay_every_region_pulls_from_the_master(fed):
    fed.write_config(relay="false")
    master = fed.create("img", os.urandom(200 * 1024), type="base")
    result = fed.sync_py(*FIRST)
    assert result.returncode == 0, result.stderr
    assert fed.served("Master", master["id"]) == len(FIRST)


def test_a_source_whose_glance_stopped_is_dropped_and_its_puller_falls_back_without_leftovers(fed):
    import signal
    import sqlite3
    import subprocess
    import time

    from tests.integration.lab.images import BIN
    from tests.integration.lab.processes import descendants

    fed.write_config(import_stall_timeout="5")
    master = fed.create("img", os.urandom(300 * 1024), type="base")
    database = fed.lab.state_dir / fed.lab.glances["RegionA2"].name / "glance.db"
    server = next(s for s in fed.lab.servers if s.port == fed.lab.glances["RegionA"].port)
    run = subprocess.Popen([str(BIN / "sync.py"), "RegionA", "RegionA2"], env=fed.env(), cwd=fed.tmp,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    frozen: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while not frozen and time.monotonic() < deadline and run.poll() is None:
            with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as db:
                [(importing,)] = db.execute("SELECT count(*) FROM images WHERE status = 'importing' AND deleted = 0 "
                                            "AND name LIKE ?", (fed.prefix + "%",)).fetchall()
            if importing:  # RegionA2 pulls from RegionA (the copy made just before): stop RegionA's Glance
                frozen = [server.pid, *descendants(server.pid)]
                for pid in frozen:
                    os.kill(pid, signal.SIGSTOP)
            time.sleep(0.02)
        out, err = run.communicate(timeout=300)
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    assert frozen, "RegionA2's import was never seen"
    assert run.returncode == 0, err
    source = fed.only("RegionA", "img")
    assert f"from image {source['id']} of region RegionA)" in err  # pulled from RegionA first...
    assert f"RegionA2: {fed.name('img')}: copied by glance-download from image {master['id']} of region Master" in err
    [copy] = fed.copies("RegionA2", "img")  # ...then from the master: the dead pull's copy is gone
    same_data(copy, master)
