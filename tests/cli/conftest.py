"""In-process CLI runs reconfigure the CLI logger: put it back after every test.  Every test runs
in its own tmp_path, so nothing a run reads from or writes to its working directory (backups,
--parallel logs, ./clouds.yaml) is the repository's."""

import pytest

from tests.cli.inprocess import restore_cli_loggers  # noqa: F401  (an autouse fixture)


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
