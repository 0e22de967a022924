"""One call per key shared by the threads that want it at the same time (gunicorn's threads of
one process): :class:`SharedCalls`.

Two ways to share, as the caller needs:

* ``fresh=False`` (token validation): a caller joins the call of its key that is running, if
  any, else makes it.
* ``fresh=True`` (region listings): a caller never gets a result older than itself.  It joins
  the round of its key that has not started yet, or opens one; a round starts when the previous
  round of its key has ended.  So at most one call per key runs and one waits, whatever the
  number of callers.

Every caller of a round gets its result, or its exception raised again.  A wait is not bounded
here: the call's own timeouts bound it.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


class _Round:
    """One call, shared by the callers that joined it."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self.callers = 1


class SharedCalls(Generic[T]):
    """Shares calls per key among concurrent callers (see the module docstring)."""

    def __init__(self, fresh: bool) -> None:
        self.fresh = fresh
        self._lock = threading.Condition()  # notified when a caller joins a round
        self._joinable: dict[Any, _Round] = {}  # the round a new caller of the key joins
        self._running: dict[Any, _Round] = {}
        self.calls = 0  # how many calls were actually made (tests, diagnostics)

    def wait_for_callers(self, key: Any, count: int, timeout: float) -> bool:
        """Whether, within ``timeout`` seconds, the round of ``key`` that new callers join has
        ``count`` callers (tests, diagnostics)."""
        def joined() -> bool:
            round_ = self._joinable.get(key)
            return round_ is not None and round_.callers >= count

        with self._lock:
            return self._lock.wait_for(joined, timeout)

    def call(self, key: Any, function: Callable[[], T]) -> T:
        """``function()``'s result (the same object for every caller of a round) or exception."""
        with self._lock:
            round_ = self._joinable.get(key)
            leader = round_ is None
            if leader:
                round_ = self._joinable[key] = _Round()
                previous = self._running.get(key)
            else:
                round_.callers += 1
                self._lock.notify_all()
        if leader:
            self._lead(key, round_, previous, function)
        else:
            round_.done.wait()
        if round_.error is not None:
            raise round_.error
        return round_.result

    def _lead(self, key: Any, round_: _Round, previous: _Round | None, function: Callable[[], T]) -> None:
        if previous is not None:
            previous.done.wait()
        with self._lock:
            if self.fresh:
                del self._joinable[key]  # from now on, new callers open the next round
            self._running[key] = round_
            self.calls += 1
        try:
            round_.result = function()
        except BaseException as exc:  # every caller of the round gets it
            round_.error = exc
        finally:
            with self._lock:
                if self._running.get(key) is round_:
                    del self._running[key]
                if self._joinable.get(key) is round_:
                    del self._joinable[key]
            round_.done.set()
