"""The facade's Glance HTTP client (:class:`GlanceHTTP`) and the bodies it sends and streams.

glanceclient's session client re-written on keystoneauth's Adapter, so that starting sync.py
does not import glanceclient (:mod:`.library_errors`).
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Iterator

from keystoneauth1 import adapter
from keystoneauth1 import exceptions as ks_exc

from ..base import CHUNK_SIZE
from .library_errors import glance_exc

IMAGE_INTERFACE = "public"  # the catalog interface of every Glance endpoint the facade uses

class GlanceHTTP(adapter.Adapter):
    """glanceclient's session client (``glanceclient.common.http.SessionClient``, python-glanceclient
    4.x), rewritten on keystoneauth's Adapter so that glanceclient is not imported until
    something fails (:data:`.library_errors.glance_exc`).  It sends the same requests and
    answers the same way:

    * ``get``/``post``/``put``/``patch``/``delete`` return ``(response, body)``: the decoded JSON
      body, or for ``application/octet-stream`` answers an iterator of the data (1 MiB chunks,
      the response closed at its end);
    * ``data`` that is JSON-serialisable is sent as JSON, a file-like one in pieces read with
      ``read(CHUNK_SIZE)`` (64 KiB; glanceclient reads 1 MiB, which costs the client more CPU:
      see :data:`.base.CHUNK_SIZE`), as HTTP chunks, or, given ``content_length`` (the exact
      length of the body, which must then hold exactly that many bytes), with a
      ``Content-Length`` header instead: cheaper for the receiving Glance (glanceclient always
      sends chunks); a request without ``Content-Type`` says ``application/octet-stream`` and
      streams its answer; header names and values are %-quoted as glanceclient does;
    * an HTTP error raises glanceclient's exception for the status (``exc.from_response``), which
      here also carries ``status_code`` (glanceclient maps some statuses, 504 among them, to a
      generic HTTPException whose ``code`` is ``N/A``); keystoneauth's ConnectTimeout and
      ConnectFailure become glanceclient's InvalidEndpoint and CommunicationError.

    Not kept: glanceclient's DEBUG log line of a failed status (the error itself says it)."""

    USER_AGENT = "python-glanceclient"  # what glanceclient sends (Glance's logs look the same)
    CHUNK = 1024 * 1024  # glanceclient's CHUNKSIZE, for downloads (measured: a little cheaper than 64 KiB)
    _TOKEN_HEADERS = ("X-Auth-Token", "X-Service-Token")

    def __init__(self, session, **kwargs):
        kwargs.setdefault("user_agent", self.USER_AGENT)
        kwargs.setdefault("service_type", "image")
        super().__init__(session, **kwargs)

    def request(self, url, method, **kwargs):
        headers = kwargs.pop("headers", {})
        if self.global_request_id:
            headers.setdefault("X-OpenStack-Request-ID", self.global_request_id)
        kwargs["raise_exc"] = False
        content_type = headers.get("Content-Type", "application/octet-stream")
        data = kwargs.pop("data", None)
        content_length = kwargs.pop("content_length", None)
        if data is not None and not isinstance(data, str):
            try:
                data = json.dumps(data)
                content_type = "application/json"
            except TypeError:  # a file-like body, in CHUNK_SIZE pieces (not glanceclient's 1 MiB)
                data = SizedBody(data, content_length) if content_length else chunks_of(data, CHUNK_SIZE)
        headers["Content-Type"] = content_type
        kwargs["stream"] = content_type == "application/octet-stream"
        try:
            resp = super().request(url, method, headers=_encode_headers(headers, self._TOKEN_HEADERS),
                                   data=data, **kwargs)
        except ks_exc.ConnectTimeout as exc:
            raise glance_exc.InvalidEndpoint(message=f"Error communicating with {self._url(url, kwargs)} {exc}")
        except ks_exc.ConnectFailure as exc:
            raise glance_exc.CommunicationError(message=f"Error finding address for {self._url(url, kwargs)}: {exc}")
        return self._handle_response(resp)

    def _url(self, url: str, kwargs: dict) -> str:
        endpoint = self.get_endpoint(auth=kwargs.get("auth")) or ""
        return f"{endpoint.rstrip('/')}/{url.lstrip('/')}"

    def _handle_response(self, resp):
        if not resp.ok or (resp.status_code == 300 and resp.request.path_url != "/versions"):
            error = glance_exc.from_response(resp, resp.content if not resp.ok else None)
            error.status_code = resp.status_code
            raise error
        content_type = resp.headers.get("Content-Type")
        if content_type == "application/octet-stream":  # image data: streamed, never read whole
            return resp, close_after_stream(resp, self.CHUNK)
        content = resp.text
        if content_type and content_type.startswith("application/json"):
            return resp, resp.json()
        try:
            return resp, json.loads(content)
        except ValueError:
            return resp, None

    def get(self, url, **kwargs):
        return self.request(url, "GET", **kwargs)

    def post(self, url, **kwargs):
        return self.request(url, "POST", **kwargs)

    def put(self, url, **kwargs):
        return self.request(url, "PUT", **kwargs)

    def patch(self, url, **kwargs):
        return self.request(url, "PATCH", **kwargs)

    def delete(self, url, **kwargs):
        return self.request(url, "DELETE", **kwargs)

    def get_range(self, url: str, start: int):
        """``GET url`` with ``Range: bytes=<start>-``, as (response, body) like :meth:`get`.

        Not through :meth:`request`: its %-quoting of header values (glanceclient's) would send
        ``bytes%3D0-``, which Glance refuses with 416, so this goes to the keystoneauth adapter
        directly, and turns its transport errors into glanceclient's as :meth:`request` does."""
        try:
            resp = adapter.Adapter.request(self, url, "GET", headers={"Range": f"bytes={start}-"},
                                           stream=True, raise_exc=False)
        except ks_exc.ConnectTimeout as exc:
            raise glance_exc.InvalidEndpoint(message=f"Error communicating with {url} {exc}")
        except ks_exc.ConnectFailure as exc:
            raise glance_exc.CommunicationError(message=f"Error finding address for {url}: {exc}")
        return self._handle_response(resp)


def chunks_of(body, size: int) -> Iterator[bytes]:
    """A file-like body read in ``size`` pieces (glanceclient's ``_chunk_body``)."""
    while chunk := body.read(size):
        yield chunk


class SizedBody:
    """A file-like body of a known length, read in CHUNK_SIZE pieces.  requests sends an
    iterable that has a length with ``Content-Length`` and its pieces as they are, where a
    generator goes as ``Transfer-Encoding: chunked``.  Why: measured on the lab (uWSGI Glance,
    256 MiB PUTs, 3 rounds, 2026-12-02), the receiving Glance spent 1.66-1.85 CPU-s on a
    Content-Length body against 1.88-2.21 on the same data in chunks, and finished sooner.
    The body must hold exactly ``length`` bytes (the verifying reader fails a stream that holds
    more or fewer, which aborts the request instead of sending a short body)."""

    def __init__(self, body, length: int):
        self._body = body
        self._length = length

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[bytes]:
        return chunks_of(self._body, CHUNK_SIZE)


def close_after_stream(response, chunk_size: int) -> Iterator[bytes]:
    """The data of a streamed answer; the response is closed once it is all read."""
    yield from response.iter_content(chunk_size=chunk_size)
    response.close()


def _encode_headers(headers: dict, token_headers: tuple[str, ...]) -> dict[bytes, bytes]:
    """Header names and values %-quoted and ASCII-encoded, as glanceclient's ``encode_headers``
    (token headers keep ``=+/``, the others ``/:``); a None value is left out."""
    encoded = {}
    for name, value in headers.items():
        if value is not None:
            safe = "=+/" if name in token_headers else "/:"
            encoded[_ascii(urllib.parse.quote(name, safe))] = _ascii(urllib.parse.quote(value, safe))
    return encoded


def _ascii(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode("ascii")


def skip(body, count: int) -> Iterator[bytes]:
    """``body``'s chunks without their first ``count`` bytes."""
    for chunk in body:
        if count >= len(chunk):
            count -= len(chunk)
            continue
        if count:
            chunk, count = chunk[count:], 0
        yield chunk
