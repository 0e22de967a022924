"""What the client libraries raise, and how to tell their failures apart.

Only these exceptions are the facade's to translate (our own bugs must not read as "Upload
failed"):

* keystoneauth1: ClientException is the base of all its errors, HTTP ones and transport ones
  (the session turns requests' Timeout/ConnectionError/other RequestException into
  ConnectTimeout/ConnectFailure/UnknownConnectionError, SSL errors into SSLError);
* glanceclient: HTTP errors are ClientException (HTTPException), its transport wrappers
  (InvalidEndpoint for a connect or read timeout, CommunicationError for a failed connection)
  are BaseException;
* the transport itself: a streamed download body raises requests' exceptions as it is read
  (ChunkedEncodingError for a connection reset or short body, ConnectionError for a read
  timeout, ContentDecodingError, SSLError: requests.RequestException), urllib3's HTTPError
  for anything urllib3 raises past requests; a socket error is wrapped by urllib3, never raw.

glanceclient is imported at the first failure only (:data:`glance_exc`).
"""

from __future__ import annotations

import functools
import importlib
from typing import Any, Iterator

import requests
import urllib3
from keystoneauth1 import exceptions as ks_exc


class _LazyModule:
    """A module imported at its first attribute access.  ``glanceclient.exc`` is one: importing
    any part of glanceclient imports all of it (glanceclient.client, oslo_utils, wrapt,
    prettytable...), ~0.15 CPU-s at every sync.py start, and its exception classes are needed
    only once something failed: ``except`` expressions are evaluated only when an exception
    reaches them, and the Glance client (:mod:`.http`) raises glanceclient's errors from its
    error paths only.  Not the standard library's ``importlib.util.LazyLoader``: finding the
    spec of ``glanceclient.exc`` imports its package, and ``glanceclient/__init__`` imports all
    of glanceclient (measured: 0.3 s of import time)."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attribute: str):
        return getattr(importlib.import_module(self._name), attribute)


glance_exc: Any = _LazyModule("glanceclient.exc")


@functools.cache
def client_errors() -> tuple[type[BaseException], ...]:
    """The classes of the module docstring, as a tuple for ``except``/``isinstance``; built at
    the first call (the first failure), so that glanceclient is imported only then."""
    return (ks_exc.ClientException, glance_exc.BaseException, glance_exc.ClientException,
            requests.RequestException, urllib3.exceptions.HTTPError)


@functools.cache
def transport_errors() -> tuple[type[BaseException], ...]:
    """The failures of a server that did not answer: no connection, a broken one, a timeout
    (built at the first call, like :func:`client_errors`)."""
    return (ks_exc.ConnectFailure, ks_exc.ConnectTimeout, glance_exc.CommunicationError,
            glance_exc.InvalidEndpoint, requests.ConnectionError, requests.Timeout,
            requests.exceptions.ChunkedEncodingError, urllib3.exceptions.ProtocolError,
            urllib3.exceptions.TimeoutError)


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of an error answer, None for anything else."""
    if isinstance(exc, ks_exc.HttpError):
        return exc.http_status or None
    if isinstance(exc, glance_exc.HTTPException):
        status = getattr(exc, "status_code", None) or exc.code
        return status if isinstance(status, int) else None
    return None


def never_connected(exc: BaseException) -> bool:
    """The request never reached the server: the connection could not be established."""
    return any(isinstance(e, urllib3.exceptions.ConnectTimeoutError)  # NewConnectionError too
               or isinstance(getattr(e, "reason", None), urllib3.exceptions.ConnectTimeoutError)
               for e in _chain(exc))


def is_timeout(exc: BaseException) -> bool:
    """A timeout somewhere in the chain (urllib3's refused connection, a NewConnectionError, is
    one of its TimeoutErrors, and no timeout)."""
    return any(isinstance(e, (ks_exc.ConnectTimeout, requests.Timeout, TimeoutError, urllib3.exceptions.TimeoutError))
               and not isinstance(e, urllib3.exceptions.NewConnectionError) for e in _chain(exc))


def is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, (glance_exc.HTTPNotFound, ks_exc.NotFound))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__
