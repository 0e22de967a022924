"""Replay behaviour scenarios through ``glancesync-mock`` and ``sync.py``.

Both run in this process (``tests/cli/inprocess.py``: their ``main`` with StringIO streams and
the scenario's environment, in the test's temporary directory); a call with ``--parallel``
starts the installed ``sync.py``, since its children write to the process's real stderr.

A scenario is a directory (layout of ``../shared/conformance/README.md``)::

    config  regions  initial/  status_pre/  status_post/  result/

replayed as: seed the store from ``initial/``; ``--show-status`` == ``status_pre``; sync;
``--show-status`` == ``status_post``; store == ``result/``.  The project's own scenarios
(``tests/scenarios/data``) may add:

* ``options``: extra arguments for every ``sync.py`` call (shell words);
* ``sync_options``: extra arguments for the sync only (e.g. ``--dry-run``);
* ``sync_exit``: the expected exit status of the sync (default 0);
* ``sync_stderr``: lines that must each appear in the sync's stderr, as many times as listed.

A region argument without a status file is expected to fail: no block for it on stdout, and
exit status 1.
"""

from __future__ import annotations

import configparser
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from fiwareglancesync.glancesync.image import LINEAGE, SOURCE_CHECKSUM, SOURCE_HASH, SOURCE_ID, read_backup_file
from fiwareglancesync.glancesync.region import Region
from tests.cli.inprocess import clean_environ, run_sync, seed_mock

REPO = Path(__file__).resolve().parents[2]
OWN_SCENARIOS = Path(__file__).resolve().parent / "data"
BIN = Path(sys.executable).parent


def conformance_dir() -> Path | None:
    configured = os.environ.get("GLANCESYNC_CONFORMANCE_DIR")
    candidate = Path(configured) if configured else REPO.parent / "shared" / "conformance"
    return candidate if candidate.is_dir() else None


def scenario_params():
    params = []
    shared = conformance_dir()
    if shared is None:
        params.append(pytest.param(None, id="conformance", marks=pytest.mark.skip(
            reason="no conformance folder: set GLANCESYNC_CONFORMANCE_DIR or place it at ../shared/conformance")))
    else:
        params += [pytest.param(p, id=f"conformance-{p.name}") for p in sorted(shared.iterdir()) if (p / "config").is_file()]
    params += [pytest.param(p, id=f"own-{p.name}") for p in sorted(OWN_SCENARIOS.iterdir()) if (p / "config").is_file()]
    return params


def master_region(config: Path) -> str:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(config)
    return parser["main"]["master_region"]


def read_words(path: Path) -> list[str]:
    return shlex.split(path.read_text()) if path.is_file() else []


def status_file(directory: Path, region_argument: str) -> Path:
    return directory / f"{Region.parse(region_argument).fullname}.csv"


def expected_block(path: Path) -> str:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return "".join(line + "\r\n" for line in lines) + "\n"


def store_contents(directory: Path) -> dict[str, list[tuple]]:
    """Region -> sorted comparable rows (properties as dicts, visibility bool, size int).

    The lineage properties are left out: the scenarios' ``result/`` files come from the
    original, which wrote none; :func:`check_lineage` checks them."""
    contents = {}
    for path in sorted(directory.glob("backup_*.csv")):
        rows = [(i.region, i.name, i.id, i.status, i.size, i.checksum, i.owner, i.is_public,
                 sorted(((k, v) for k, v in i.user_properties.items() if k not in LINEAGE), key=lambda kv: kv[0]))
                for i in read_backup_file(str(path))]
        contents[path.name] = sorted(rows, key=repr)
    return contents


def check_lineage(initial: Path, store: Path, master: str) -> None:
    """Every image the sync created carries the lineage of the master image of its name (a
    renamed ``.old`` image keeps the lineage it had); images that were there before, and the
    master's, carry exactly the lineage they had."""
    masters = {i.name: i for i in read_backup_file(str(store / f"backup_{master}.csv"))}
    before = {i.id: i for path in initial.glob("backup_*.csv") for i in read_backup_file(str(path))}
    for path in sorted(store.glob("backup_*.csv")):
        for image in read_backup_file(str(path)):
            if image.id in before:
                assert image.lineage == before[image.id].lineage, (path.name, image.name)
                continue
            source = masters[image.name]
            assert image.lineage == {SOURCE_ID: source.id, SOURCE_CHECKSUM: source.checksum or "",
                                     SOURCE_HASH: ""}, (path.name, image.name, image.lineage)


class Replay:
    def __init__(self, scenario: Path, store: Path):
        self.scenario = scenario
        self.env = clean_environ(GLANCESYNC_MOCKPERSISTENT_PATH=str(store), GLANCESYNC_CONFIG=str(scenario / "config"),
                                 XDG_RUNTIME_DIR=str(store.parent))  # region locks in the test's tmp_path
        self.regions = read_words(scenario / "regions")
        self.options = read_words(scenario / "options")

    def sync_py(self, *args: str, regions: list[str] | None = None) -> subprocess.CompletedProcess:
        arguments = [*self.options, *args, "--", *(self.regions if regions is None else regions)]
        if "--parallel" not in arguments:
            # StringIO streams keep the \r\n line ends under test as written
            return run_sync(arguments, self.env)
        # bytes, decoded here: text mode would turn the \r\n line ends under test into \n
        done = subprocess.run([str(BIN / "sync.py"), *arguments], env=self.env, capture_output=True, timeout=120)
        return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())

    def check_status(self, directory: Path) -> None:
        expected_regions = [r for r in self.regions if status_file(directory, r).is_file()]
        result = self.sync_py("--show-status")
        expected = "".join(expected_block(status_file(directory, r)) for r in expected_regions)
        assert result.stdout == expected, f"--show-status vs {directory}\nstderr:\n{result.stderr}"
        failing = len(expected_regions) != len(self.regions)
        assert result.returncode == (1 if failing else 0), result.stderr
        assert "Traceback" not in result.stderr
        # Status files of regions that are not synchronised (e.g. the master region) are checked alone.
        for path in sorted(directory.glob("*.csv")):
            region = path.stem
            if any(Region.parse(r).fullname == region for r in self.regions):
                continue
            alone = self.sync_py("--show-status", regions=[region])
            assert alone.returncode == 0, alone.stderr
            assert alone.stdout == expected_block(path), f"--show-status {region} vs {path}"


@pytest.mark.parametrize("scenario", scenario_params())
def test_scenario(scenario: Path, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # whatever a run writes to its working directory stays here
    store = tmp_path / "store"
    seeded = seed_mock(["--path", store, "--confirm", scenario / "initial"])
    assert (seeded.returncode, seeded.stderr) == (0, ""), seeded.stderr
    assert seeded.stdout == f"export GLANCESYNC_MOCKPERSISTENT_PATH={store}\n"

    replay = Replay(scenario, store)
    replay.check_status(scenario / "status_pre")

    synced = replay.sync_py(*read_words(scenario / "sync_options"))
    expected_exit = int((scenario / "sync_exit").read_text()) if (scenario / "sync_exit").is_file() else 0
    assert synced.returncode == expected_exit, synced.stderr
    assert "Traceback" not in synced.stderr
    stderr_lines = synced.stderr.splitlines()
    wanted = scenario / "sync_stderr"
    if wanted.is_file():
        for line in dict.fromkeys(wanted.read_text().splitlines()):
            count = wanted.read_text().splitlines().count(line)
            assert stderr_lines.count(line) == count, f"expected {count}x {line!r} in stderr:\n{synced.stderr}"

    replay.check_status(scenario / "status_post")
    assert store_contents(store) == store_contents(scenario / "result")
    check_lineage(scenario / "initial", store, master_region(scenario / "config"))
