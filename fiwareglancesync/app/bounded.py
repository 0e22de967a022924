"""Requests answer within ``REQUEST_TIMEOUT`` whatever the clouds do (README "The REST service",
issue 10).

Every call a request makes to Keystone or Glance (the caller's token validation, the region
list, a region's status) runs through :func:`call_bounded`: in a daemon thread of its own, which
the request waits for until its deadline (``g.request_deadline``, set when the request starts:
``REQUEST_TIMEOUT`` seconds later).  When the deadline passes first the request ends with
:class:`BackendTimeout` (503, the JSON envelope), well before gunicorn's worker timeout, and the
thread is left to finish on its own; it cannot live long, because the clients it uses have their
own timeouts (the request facades' ``http_timeout`` is at most ``REQUEST_TIMEOUT``, the token
validator's ``KEYSTONE_TIMEOUT``).  At most :data:`MAX_PENDING` such threads exist in a process;
a request finding none free is answered 503 at once.

The thread does not need the Flask application context: engine and validator do not use it.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, TypeVar

from flask import current_app, g, has_request_context

from .errors import BackendTimeout

T = TypeVar("T")

MAX_PENDING = 32  # backend calls of a process still running (mostly: abandoned ones)
_slots = threading.BoundedSemaphore(MAX_PENDING)


def start_request_clock() -> None:
    """``before_request``: the deadline of this request's backend calls."""
    g.request_deadline = time.monotonic() + float(current_app.config["REQUEST_TIMEOUT"])


def remaining() -> float:
    """Seconds left before the request's deadline (REQUEST_TIMEOUT outside a request)."""
    if has_request_context() and "request_deadline" in g:
        return max(0.0, g.request_deadline - time.monotonic())
    return float(current_app.config["REQUEST_TIMEOUT"])


def call_bounded(what: str, call: Callable[[], T]) -> T:
    """``call()``'s result or exception, or BackendTimeout when the request's deadline comes first.

    ``what`` completes the message: "... did not answer in time while <what>".
    """
    timeout = remaining()
    limit = current_app.config["REQUEST_TIMEOUT"]
    if not _slots.acquire(blocking=False):
        raise BackendTimeout(f"Too many calls to Keystone or Glance are still waiting for an answer; "
                             f"not {what}")
    outcome: dict[str, object] = {}
    done = threading.Event()

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the request thread, which raises it
            outcome["error"] = exc
        finally:
            done.set()
            _slots.release()

    threading.Thread(target=run, name="glancesync-backend-call", daemon=True).start()
    if not done.wait(timeout):
        raise BackendTimeout(f"Keystone or Glance did not answer in time (REQUEST_TIMEOUT = {limit} s) "
                             f"while {what}")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
