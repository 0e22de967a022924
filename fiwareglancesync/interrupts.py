"""SIGINT and SIGTERM for the command-line shells (README "One run per region").

While :func:`interrupts_raise` is active, the first SIGINT or SIGTERM raises :class:`Interrupted`
in the main thread, wherever it is (a blocking read included).  It derives from BaseException,
so no ``except Exception`` catch-all swallows it, while the facade's clean-up of a half-made copy
(``except BaseException``) still runs on its way up.  A second signal exits at once with status
``128 + signal`` after calling the optional ``at_second`` (the ``--parallel`` parent uses it to
kill its children rather than leave them as orphans) or, with ``second_exits=False`` (a
``--parallel`` child, which gets Ctrl-C from the terminal *and* from its parent), is ignored so
that the clean-up is not cut short: the parent bounds how long it waits.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """The run was asked to stop by a signal."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_status(self) -> int:
        """The shell convention: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum


@contextmanager
def interrupts_raise(at_second: Callable[[], None] | None = None, second_exits: bool = True) -> Iterator[None]:
    """Turn SIGINT/SIGTERM into :class:`Interrupted` for the ``with`` block (main thread only;
    elsewhere, e.g. a test runner's worker thread, signals keep their handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def handler(signum, frame):
        if received:
            if not second_exits:
                return
            if at_second is not None:
                at_second()
            os._exit(128 + signum)
        received.append(signum)
        raise Interrupted(signum)

    previous = {signum: signal.signal(signum, handler) for signum in SIGNALS}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
