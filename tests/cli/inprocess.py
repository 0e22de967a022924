"""Run ``sync.py`` and ``glancesync-mock`` inside the test process, as their console scripts would.

``run_sync(args, environ)`` calls :func:`fiwareglancesync.sync.main` with ``io.StringIO`` streams
and an explicit environment and returns a :class:`subprocess.CompletedProcess`, so a test reads
``returncode``, ``stdout`` and ``stderr`` exactly as it did from a real process.  ``main`` writes
everything, ``--help`` and usage errors included, to the ``out``/``err`` it is given and returns
the exit status; stricter than a process, a call must have written nothing to
``sys.stdout``/``sys.stderr`` directly and must not raise ``SystemExit``.

``seed_mock(args)`` does the same for ``glancesync-mock``.

``restore_cli_loggers`` is an autouse fixture for the conftest files: ``main`` reconfigures the
CLI logger (handler on the ``err`` of the call) on every call; this puts the loggers back as they
were before each test, so no handler on a dead StringIO leaks into the next test.  It also checks
that the SIGINT/SIGTERM handlers ``main`` installs while it runs are gone after the test (restored,
and the test errors, if one was left behind).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import subprocess
from typing import Mapping, Sequence

import pytest

from fiwareglancesync import sync
from fiwareglancesync.glancesync.facades import mock

# the CLI logger: "glancesync" after the engine refactor, "GlanceSync-Client" before it
CLI_LOGGERS = ("glancesync", "GlanceSync-Client")
SIGNALS = (signal.SIGINT, signal.SIGTERM)


def clean_environ(**variables: str) -> dict[str, str]:
    """The test process's environment without OS_*, GLANCESYNC_* and XDG_RUNTIME_DIR, plus ``variables``.

    (XDG_RUNTIME_DIR places the default lock_dir: a test that syncs passes its own temporary
    directory, so its region locks are not shared with other tests or other test runs.)"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "GLANCESYNC_")) and k != "XDG_RUNTIME_DIR"}
    env.update(variables)
    return env


def _exit_status(exc: SystemExit) -> int:
    """The status a process ends with after ``sys.exit(exc.code)``."""
    if exc.code is None:
        return 0
    return exc.code if isinstance(exc.code, int) else 1


def run_sync(args: Sequence[str], environ: Mapping[str, str]) -> subprocess.CompletedProcess:
    """``sync.py *args`` in this process, with ``environ`` as its whole environment."""
    argv = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    stray_out, stray_err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stray_out), contextlib.redirect_stderr(stray_err):
        code = sync.main(argv, out=out, err=err, environ=dict(environ))  # never SystemExit
    assert (stray_out.getvalue(), stray_err.getvalue()) == ("", ""), \
        "main() wrote to sys.stdout/sys.stderr instead of the out/err it was given"
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def seed_mock(args: Sequence[str]) -> subprocess.CompletedProcess:
    """``glancesync-mock *args`` in this process, its streams given to its ``main``; argparse's
    own usage errors (which go to sys.stderr and raise SystemExit) are caught the same way."""
    argv = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err):  # only argparse writes there
        try:
            code = mock.main(argv, out=out, err=err)
        except SystemExit as exc:
            code = _exit_status(exc)
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


@pytest.fixture(autouse=True)
def restore_cli_loggers():
    saved = {}
    for name in CLI_LOGGERS:
        logger = logging.getLogger(name)
        saved[name] = (list(logger.handlers), logger.level, logger.propagate, logger.disabled)
    signal_handlers = {signum: signal.getsignal(signum) for signum in SIGNALS}
    yield
    left = [signal.Signals(signum).name for signum, handler in signal_handlers.items()
            if signal.getsignal(signum) != handler]
    for signum, handler in signal_handlers.items():
        signal.signal(signum, handler)
    for name, (handlers, level, propagate, disabled) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
        logger.disabled = disabled
    assert not left, f"signal handlers left installed after the test: {left}"
