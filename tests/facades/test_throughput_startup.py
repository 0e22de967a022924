"""Start-up cost of sync.py (issue 12, whole-process throughput) without a change of behaviour.

* sync.py and the real facade import neither glanceclient nor tqdm until they are needed (an
  error's exception class, a progress bar): a fresh interpreter proves it;
* the facade's own Glance client (:class:`openstack.GlanceHTTP`, keystoneauth's Adapter) sends
  the same requests as glanceclient's SessionClient and answers the same way, checked side by
  side against one recording HTTP server.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from glanceclient import exc as glance_exc
from glanceclient.common import http as glance_http
from keystoneauth1 import session as ks_session

from fiwareglancesync.glancesync.facades import openstack
from fiwareglancesync.glancesync.facades.base import CHUNK_SIZE


def test_sync_py_and_the_facade_import_no_glanceclient_and_no_tqdm():
    code = ("import sys, fiwareglancesync.sync, fiwareglancesync.glancesync.facades.openstack; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'glanceclient', 'tqdm', 'oslo_utils'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_lazy_glanceclient_exceptions_are_glanceclient_s():
    assert openstack.glance_exc.HTTPNotFound is glance_exc.HTTPNotFound
    assert all(issubclass(cls, openstack.client_errors())
               for cls in (glance_exc.HTTPNotFound, glance_exc.CommunicationError, glance_exc.InvalidEndpoint))


class Recorder(BaseHTTPRequestHandler):
    """Records (method, path, headers that matter, body) and answers per path."""

    seen: list = []
    protocol_version = "HTTP/1.1"

    def _answer(self):
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") == "chunked":
            body, pieces = b"", []
            while (size := int(self.rfile.readline().strip(), 16)):
                pieces.append(size)
                body += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
        else:
            body, pieces = self.rfile.read(int(length or 0)), None
        keep = {k: v for k, v in self.headers.items() if k.lower() in
                ("content-type", "x-openstack-image-size", "user-agent", "range", "transfer-encoding")}
        self.seen.append((self.command, self.path, keep, body, pieces))
        status, ctype, payload = {
            "/v2/images": (201, "application/json", b'{"id": "i1"}'),
            "/v2/images/i1/file": (200, "application/octet-stream", b"x" * 3000000),
            "/v2/missing": (404, "application/json", b'{"error": {"message": "No image found"}}'),
            "/v2/busy": (504, "text/html", b"<html><body><h1>504 Gateway Time-out</h1></body></html>"),
            "/v2/text": (200, "text/plain", b"not json"),
            "/v2/jsontext": (200, "text/plain", b'{"a": 1}'),
        }.get(self.path.split("?")[0], (204, None, b""))
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class Body:
    """A file-like upload body of 2.5 MiB, read(n) as the verifying reader is."""

    def __init__(self):
        self.data = b"y" * (2 * 1024 * 1024 + 512 * 1024)

    def read(self, size=-1):
        out, self.data = self.data[:size], self.data[size:]
        return out


CALLS = [
    ("get", "/v2/images?limit=100", {}),
    ("post", "/v2/images", {"data": {"name": "n", "disk_format": "raw"}}),
    ("put", "/v2/images/i1/file", {"headers": {"Content-Type": "application/octet-stream",
                                               "x-openstack-image-size": "2621440"}, "data": Body()}),
    ("patch", "/v2/images/i1", {"headers": {"Content-Type": "application/openstack-images-v2.1-json-patch"},
                                "data": json.dumps([{"op": "replace", "path": "/visibility", "value": "public"}])}),
    ("get", "/v2/images/i1/file", {}),
    ("get", "/v2/text", {}),
    ("get", "/v2/jsontext", {}),
    ("delete", "/v2/images/i1", {}),
]


def outcome(client, method, url, kwargs):
    kwargs = {k: (Body() if isinstance(v, Body) else v) for k, v in kwargs.items()}
    Recorder.seen.clear()
    response, body = getattr(client, method)(url, **kwargs)
    if body is not None and not isinstance(body, (dict, list)):
        body = b"".join(body)
    return response.status_code, body, list(Recorder.seen)


@pytest.mark.parametrize("method,url,kwargs", CALLS, ids=[f"{m} {u}" for m, u, _ in CALLS])
def test_the_facade_client_sends_and_answers_as_glanceclient_does(server, method, url, kwargs):
    ours = openstack.GlanceHTTP(ks_session.Session(), endpoint_override=server)
    theirs = glance_http.SessionClient(ks_session.Session(), endpoint_override=server)
    mine, reference = outcome(ours, method, url, kwargs), outcome(theirs, method, url, kwargs)
    if method == "put":  # the one difference, on purpose: the HTTP chunks (base.CHUNK_SIZE, not 1 MiB)
        (*_, my_pieces), (*_, their_pieces) = mine[2][0], reference[2][0]
        size = len(Body().data)
        assert my_pieces == [CHUNK_SIZE] * (size // CHUNK_SIZE) + ([size % CHUNK_SIZE] if size % CHUNK_SIZE else [])
        assert their_pieces == [1024 * 1024, 1024 * 1024, 512 * 1024]
        mine = (mine[0], mine[1], [mine[2][0][:-1]])
        reference = (reference[0], reference[1], [reference[2][0][:-1]])
    assert mine == reference


def test_a_body_of_known_length_goes_with_content_length_in_one_piece_per_read(server):
    """``content_length`` (the upload's data PUT): the same request, framed by Content-Length
    instead of chunks, and the body read in CHUNK_SIZE pieces."""
    ours = openstack.GlanceHTTP(ks_session.Session(), endpoint_override=server)
    reads = []

    class Counted(Body):
        def read(self, size=-1):
            reads.append(size)
            return super().read(size)

    size = len(Body().data)
    Recorder.seen.clear()
    response, answer = ours.put("/v2/images/i1/file", headers={"Content-Type": "application/octet-stream"},
                                data=Counted(), content_length=size)
    b"".join(answer)  # the recorder answers this path with data: read it, the response closes
    (method, path, headers, body, pieces), = Recorder.seen
    assert (response.status_code, method, path) == (200, "PUT", "/v2/images/i1/file")
    assert pieces is None and "transfer-encoding" not in {k.lower() for k in headers}
    assert body == Body().data
    assert set(reads) == {CHUNK_SIZE}


@pytest.mark.parametrize("url,cls,status", [("/v2/missing", glance_exc.HTTPNotFound, 404),
                                            ("/v2/busy", glance_exc.HTTPException, 504)])
def test_http_errors_are_glanceclient_s_with_the_status(server, url, cls, status):
    ours = openstack.GlanceHTTP(ks_session.Session(), endpoint_override=server)
    theirs = glance_http.SessionClient(ks_session.Session(), endpoint_override=server)
    with pytest.raises(cls) as mine:
        ours.get(url)
    with pytest.raises(cls) as reference:
        theirs.get(url)
    assert (type(mine.value), str(mine.value)) == (type(reference.value), str(reference.value))
    assert mine.value.status_code == status


def test_a_refused_connection_is_glanceclient_s_communication_error():
    import socket

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    client = openstack.GlanceHTTP(ks_session.Session(), endpoint_override=f"http://127.0.0.1:{port}")
    with pytest.raises(glance_exc.CommunicationError, match=rf"Error finding address for http://127.0.0.1:{port}/v2/x"):
        client.get("/v2/x")
