"""The retry policy (README "Retries and timeouts"): what is transient, how long to wait, and the
one retry budget (:class:`Retries`) that every retrying loop of the facade spends: the plain
call (:func:`retrying`), the upload that starts again from a fresh ``source.open()`` and the
download that resumes with ``Range``.

The retries are ours, not keystoneauth1's ``connect_retries`` / ``status_code_retries``: those
have no jitter, count connection and status retries separately, log their own text on their
own logger, and would resend a half-consumed upload body.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Callable, TypeVar

from keystoneauth1 import exceptions as ks_exc

from .library_errors import client_errors, is_timeout, never_connected, status_of, transport_errors

# The package's one logger, a child of the "glancesync" logger which the CLI configures.
LOG = logging.getLogger("glancesync.facades.openstack")

RETRY_DELAY = 1.0  # the first backoff step: retry n waits between half and all of RETRY_DELAY * 2**(n-1)
RETRY_MAX_DELAY = 30.0
TRANSIENT_STATUSES = frozenset({502, 503, 504})

sleep = time.sleep  # every wait of the facade, retries and import polls (tests replace it)

T = TypeVar("T")


def backoff(attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (1, 2, ...): exponential, with jitter
    (uniform between half and all of ``RETRY_DELAY * 2**(attempt-1)``, at most RETRY_MAX_DELAY),
    so that clients that failed together do not retry together."""
    ceiling = min(RETRY_MAX_DELAY, RETRY_DELAY * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


def transient_cause(exc: BaseException, *, create: bool = False) -> str | None:
    """Why ``exc`` is worth a retry (``HTTP 503 from Glance``, ``connection to Keystone
    failed``...), or None when it is not transient.

    Transient: a connection that failed, was reset or broke mid-body, a timeout, HTTP
    502/503/504.  With ``create`` (a non-idempotent POST) only what proves that nothing was
    done: an HTTP 503 answer, or a connection that was never established.
    """
    status = status_of(exc)
    service = "Keystone" if isinstance(exc, ks_exc.ClientException) else "Glance"
    if status is not None:
        if status == 503 or (status in TRANSIENT_STATUSES and not create):
            return f"HTTP {status} from {service}"
        return None
    if not isinstance(exc, transport_errors()):
        return None
    if create and not never_connected(exc):
        return None
    if is_timeout(exc):
        return f"no answer from {service} in time"
    return f"connection to {service} failed"


class Retries:
    """The retries of one operation: at most ``limit`` (the target's ``retries``), each after
    :func:`backoff` and announced by one WARNING."""

    def __init__(self, limit: int):
        self.limit = limit
        self.done = 0  # retries so far

    def wait(self, cause: str | None, situation: str, deadline: float | None = None) -> bool:
        """After a failure: False when it is not retried (``cause`` None: not transient; no
        retry left; the wait would end past ``deadline``, a time.monotonic() value); else log
        ``<situation>retry <n> of <limit> in <s> s``, wait, and return True."""
        if cause is None or self.done >= self.limit:
            return False
        self.done += 1
        delay = backoff(self.done)
        if deadline is not None and time.monotonic() + delay >= deadline:
            return False
        LOG.warning(f"{situation}retry {self.done} of {self.limit} in {delay:.1f} s")
        sleep(delay)
        return True


def retrying(call: Callable[[], T], retries: int, where: str, operation: str, *, create: bool = False,
             deadline: float | None = None) -> T:
    """``call()``, retried on transient failures (:func:`transient_cause`, ``create`` as there)
    at most ``retries`` times, never past ``deadline``; the WARNING names ``where`` (a region
    or target) and ``operation``.  The last failure is raised as it came (the caller
    translates it)."""
    budget = Retries(retries)
    while True:
        try:
            return call()
        except client_errors() as exc:
            cause = transient_cause(exc, create=create)
            if not budget.wait(cause, f"{where}: {cause} while {operation}; ", deadline):
                raise
