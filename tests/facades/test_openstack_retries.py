"""OpenStackFacade robustness without servers (README "Retries and timeouts"): retries of transient
failures with
backoff and one WARNING each, the create POST retried only when nothing was created, an upload
restarted from the beginning after its data PUT failed, a download resumed with ``Range`` after
it broke, and the timeouts each request gets.  Test doubles from test_openstack_unit; the
backoff waits are recorded (the ``waits`` fixture), never slept."""

import logging
import re

import pytest
import requests
import urllib3
from glanceclient import exc as glance_exc
from keystoneauth1 import exceptions as ks_exc

from fiwareglancesync.glancesync.errors import FacadeError, ListingTimeout, TransferError
from fiwareglancesync.glancesync.facades import openstack
from fiwareglancesync.glancesync.facades.base import Uploaded
from fiwareglancesync.glancesync.facades.openstack import OpenStackFacade, backoff, transient_cause
from fiwareglancesync.glancesync.sources import RegionSource
from tests.facades.test_openstack_unit import (  # noqa: F401  (fixtures)
    DATA,
    MIB,
    REGION,
    FakeSession,
    Pager,
    Response,
    Source,
    clock,
    facade,
    glance,
    master_image,
    record,
    target,
    waits,
    with_pager,
)

LOGGER = "glancesync.facades.openstack"
RETRY = re.compile(r"retry (\d) of (\d) in (\d+\.\d) s$")


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


REASONS = {400: "Bad Request", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
           504: "Gateway Time-out"}


def http_error(status: int) -> glance_exc.HTTPException:
    """What the facade's glance client raises for ``status`` (504 has no class of its own) when
    the answer is the usual HTML page."""
    page = f"<html>\n<body>\n<h1>{status} {REASONS[status]}</h1>\nService down for maintenance\n</body>\n</html>"
    response = type("R", (), {"status_code": status, "headers": {"content-type": "text/html"}, "text": page})()
    error = glance_exc.from_response(response, page.encode())
    error.status_code = status
    return error


def chained(outer: BaseException, *inner: BaseException) -> BaseException:
    """``outer`` raised while handling ``inner`` (innermost last), as the libraries chain them."""
    error = None
    for exc in reversed((outer,) + inner):
        exc.__context__ = error
        error = exc
    return outer


REFUSED = chained(glance_exc.CommunicationError("Error finding address for http://glance/v2/images: refused"),
                  ks_exc.ConnectFailure("Unable to establish connection"),
                  requests.exceptions.ConnectionError("Max retries exceeded"),
                  urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection: [Errno 111]"))
RESET = chained(glance_exc.CommunicationError("Error finding address for http://glance/v2/images: aborted"),
                ks_exc.ConnectFailure("Unable to establish connection"),
                requests.exceptions.ConnectionError("Connection aborted."),
                urllib3.exceptions.ProtocolError("Connection aborted."),
                ConnectionResetError(104, "Connection reset by peer"))
READ_TIMEOUT = chained(glance_exc.InvalidEndpoint("Error communicating with http://glance/v2/images"),
                       ks_exc.ConnectTimeout("Request to http://glance/v2/images timed out"),
                       requests.exceptions.ReadTimeout("Read timed out. (read timeout=60.0)"))


# ---------------------------------------------------------------------------- classification
@pytest.mark.parametrize("error, cause", [
    (http_error(502), "HTTP 502 from Glance"),
    (http_error(503), "HTTP 503 from Glance"),
    (http_error(504), "HTTP 504 from Glance"),
    (ks_exc.ServiceUnavailable(), "HTTP 503 from Keystone"),
    (ks_exc.BadGateway(), "HTTP 502 from Keystone"),
    (ks_exc.GatewayTimeout(), "HTTP 504 from Keystone"),
    (REFUSED, "connection to Glance failed"),
    (RESET, "connection to Glance failed"),
    (READ_TIMEOUT, "no answer from Glance in time"),
    (ks_exc.ConnectFailure("Unable to establish connection to http://keystone/v3/auth/tokens"),
     "connection to Keystone failed"),
    (ks_exc.ConnectTimeout("Request to http://keystone/v3/auth/tokens timed out"), "no answer from Keystone in time"),
    (requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead"), "connection to Glance failed"),
    (chained(requests.exceptions.ConnectionError("Read timed out."),
             urllib3.exceptions.ReadTimeoutError(None, "/file", "Read timed out.")),
     "no answer from Glance in time"),
], ids=lambda value: value if isinstance(value, str) else type(value).__name__)
def test_transient_failures_and_their_causes(error, cause):
    assert transient_cause(error) == cause


@pytest.mark.parametrize("error", [
    http_error(500), http_error(400), glance_exc.HTTPNotFound("no image"), glance_exc.HTTPForbidden("protected"),
    glance_exc.HTTPConflict("conflict"), ks_exc.Unauthorized("bad password"), ks_exc.InternalServerError(),
    ks_exc.EndpointNotFound("no endpoint"), ks_exc.SSLError("certificate verify failed"),
    requests.exceptions.ContentDecodingError("bad gzip"),
], ids=lambda error: type(error).__name__ + str(getattr(error, "status_code", "")))
def test_other_failures_are_not_transient(error):
    assert transient_cause(error) is None


@pytest.mark.parametrize("error, cause", [
    (http_error(503), "HTTP 503 from Glance"),
    (REFUSED, "connection to Glance failed"),
    (http_error(502), None), (http_error(504), None),  # a gateway may have passed the request on
    (RESET, None), (READ_TIMEOUT, None),  # the request may have been received
], ids=["503", "refused", "502", "504", "reset", "read-timeout"])
def test_a_create_is_retried_only_when_nothing_can_have_been_created(error, cause):
    assert transient_cause(error, create=True) == cause


def test_backoff_is_exponential_with_jitter(monkeypatch):
    monkeypatch.setattr(openstack.retry, "RETRY_DELAY", 1.0)
    samples = {attempt: [backoff(attempt) for _ in range(200)] for attempt in (1, 2, 3, 10)}
    for attempt, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (10, openstack.RETRY_MAX_DELAY)):
        assert all(ceiling / 2 <= delay <= ceiling for delay in samples[attempt])
        assert len(set(samples[attempt])) > 100, "jitter: clients failing together do not retry together"


# ---------------------------------------------------------------------------- reads and writes
def test_a_listing_retries_two_503_then_succeeds_with_one_warning_each(facade, clock, caplog, waits):
    pager = Pager([[record(1)]], clock)
    failures = [http_error(503), http_error(503)]
    real_get = pager.get
    calls = []

    def get(url, timeout=None, headers=None):
        calls.append(url)
        if failures:
            raise failures.pop(0)
        return real_get(url, timeout)
    pager.get = get
    images = with_pager(facade, pager).get_imagelist(REGION)
    assert [i.name for i in images] == ["img1"]
    assert len(calls) == 3
    logged = warnings(caplog)
    assert len(logged) == 2 == len(waits)
    for n, (line, waited) in enumerate(zip(logged, waits), start=1):
        assert line.startswith("Spain: HTTP 503 from Glance while listing images; ")
        assert RETRY.search(line).group(1, 2) == (str(n), "3")
        assert float(RETRY.search(line).group(3)) == round(waited, 1)


def test_retries_stop_after_the_target_s_retries(facade, glance, caplog, waits):
    glance.records["i1"] = {"id": "i1", "name": "a", "visibility": "public"}
    glance.fail["get"] = http_error(503)
    with pytest.raises(FacadeError, match="^Spain: Update of b failed. Cause: HTTP 503 Service Unavailable: Service down"):
        facade.update_metadata(REGION, master_image(id="i1", name="b"))
    assert glance.calls == ["get"] * 4  # the first try and 3 retries
    assert [RETRY.search(line).group(1) for line in warnings(caplog)] == ["1", "2", "3"]
    assert all("while reading image i1" in line for line in warnings(caplog))


def test_no_retry_with_retries_0(glance, caplog):
    facade = OpenStackFacade(target(retries=0))
    facade._session = FakeSession()
    facade._clients[REGION.name] = glance
    glance.records["i1"] = {"id": "i1"}
    glance.fail["delete"] = http_error(503)
    with pytest.raises(FacadeError):
        facade.delete_image(REGION, "i1")
    assert glance.calls == ["delete"] and warnings(caplog) == []


def test_a_non_transient_failure_is_not_retried(facade, glance, caplog):
    glance.records["i1"] = {"id": "i1", "name": "a", "visibility": "public"}
    glance.fail["patch"] = http_error(500)
    with pytest.raises(FacadeError, match="HTTP 500"):
        facade.update_metadata(REGION, master_image(id="i1", name="b"))
    assert glance.calls == ["get", "patch"] and warnings(caplog) == []


def test_patch_and_delete_are_retried(facade, glance, caplog):
    glance.records["i1"] = {"id": "i1", "name": "a", "visibility": "public"}
    glance.fail["patch"] = [RESET]
    glance.fail["delete"] = [READ_TIMEOUT, http_error(502)]
    facade.update_metadata(REGION, master_image(id="i1", name="b", user_properties={}))
    assert glance.records["i1"]["name"] == "b"
    assert facade.delete_image(REGION, "i1") is True
    assert warnings(caplog)[0].startswith("Spain: connection to Glance failed while updating image b; retry 1 of 3")
    assert warnings(caplog)[1].startswith("Spain: no answer from Glance in time while deleting image i1; retry 1 of 3")
    assert warnings(caplog)[2].startswith("Spain: HTTP 502 from Glance while deleting image i1; retry 2 of 3")


def test_a_504_is_reported_with_its_status(facade, glance, caplog):
    glance.records["i1"] = {"id": "i1"}
    glance.fail["delete"] = http_error(504)
    with pytest.raises(FacadeError, match=r"^Spain: Deletion of image i1 Failed. Cause: HTTP 504 Gateway Time-out: Service down"):
        facade.delete_image(REGION, "i1")
    assert len(warnings(caplog)) == 3


def test_keystone_failures_are_retried_for_the_token(facade, caplog):
    facade._session = FakeSession(errors=[ks_exc.ServiceUnavailable(), ks_exc.ConnectFailure("refused")])
    assert facade.get_tenant_id() == "p1"
    assert facade._session.calls == 3
    assert [line.split(";")[0] for line in warnings(caplog)] == [
        "master: HTTP 503 from Keystone while reading the project id",
        "master: connection to Keystone failed while reading the project id"]


def test_the_catalog_lookup_of_a_listing_is_retried(facade, clock, caplog):
    facade._session = FakeSession(errors=[ks_exc.GatewayTimeout()])
    with_pager(facade, Pager([[record(1)]], clock)).get_imagelist(REGION)
    assert warnings(caplog)[0].startswith("Spain: HTTP 504 from Keystone while reading the catalog; retry 1 of 3")


def test_listing_retries_never_run_past_its_deadline(facade, clock, waits):
    """list_images_timeout (30 s) bounds the listing with its retries: a retry that would start
    after the deadline is not made."""
    def get(url, timeout=None, headers=None):
        clock[0] += 29.5  # this page failed after 29.5 s: no time left for a backoff
        raise READ_TIMEOUT
    facade._clients[REGION.name] = type("Slow", (), {"get": staticmethod(get)})()
    with pytest.raises(ListingTimeout):
        facade.get_imagelist(REGION)
    assert waits == []


# ---------------------------------------------------------------------------- create and upload
def test_a_create_answered_503_is_retried(facade, glance, caplog):
    glance.fail["create"] = [http_error(503), http_error(503)]
    uploaded = facade.upload_image(REGION, master_image(), Source())
    assert glance.calls == ["create", "create", "create", "upload", "get", "patch"]
    assert list(glance.records) == [uploaded.image_id]
    assert [line.split(";")[0] for line in warnings(caplog)] == ["Spain: HTTP 503 from Glance while creating image base"] * 2


@pytest.mark.parametrize("error", [RESET, READ_TIMEOUT, http_error(504)], ids=["reset", "timeout", "504"])
def test_a_create_that_may_have_happened_is_not_retried(facade, glance, caplog, error):
    glance.fail["create"] = [error]
    with pytest.raises(TransferError, match="^Spain: Upload of base Failed. Cause: "):
        facade.upload_image(REGION, master_image(), Source())
    assert glance.calls == ["create"] and warnings(caplog) == []


def test_an_upload_whose_put_fails_is_deleted_and_restarted_from_the_beginning(facade, glance, caplog):
    source = CountingSource()
    glance.fail["upload"] = [RESET]
    uploaded = facade.upload_image(REGION, master_image(), source)
    assert glance.calls == ["create", "upload!", "delete", "create", "upload", "get", "patch"]
    assert source.opened == 2, "a fresh source.open() for the new attempt"
    assert list(glance.records) == [uploaded.image_id]
    assert glance.records[uploaded.image_id]["status"] == "active"
    assert uploaded == Uploaded(uploaded.image_id, source.bytes_given)  # every attempt's bytes
    assert uploaded.bytes_sent > len(DATA)
    [line] = warnings(caplog)
    assert line.startswith("Spain: connection to Glance failed while uploading the data of base; the copy is "
                           "deleted and the upload starts again from the beginning: retry 1 of 3 in ")


def test_an_upload_failing_every_time_gives_up_after_the_retries(facade, glance, caplog):
    glance.fail["upload"] = http_error(503)
    with pytest.raises(TransferError, match="^Spain: Upload of base Failed. Cause: HTTP 503"):
        facade.upload_image(REGION, master_image(), Source())
    assert glance.calls.count("upload!") == 4 and glance.records == {}
    assert len(warnings(caplog)) == 3


@pytest.mark.parametrize("setup", [
    {"fail": {"upload": [http_error(500)]}},
    {"store_checksum": "f" * 32},
], ids=["500", "checksum"])
def test_an_upload_failing_for_good_is_not_restarted(facade, glance, caplog, setup):
    for key, value in setup.items():
        setattr(glance, key, value)
    with pytest.raises(TransferError):
        facade.upload_image(REGION, master_image(), Source())
    assert glance.calls.count("create") == 1 and glance.records == {}
    assert warnings(caplog) == []


def test_a_failing_source_is_not_restarted(facade, glance, caplog):
    with pytest.raises(TransferError, match="disk read error"):
        facade.upload_image(REGION, master_image(), Source(fail_after=3))
    assert glance.calls.count("create") == 1 and warnings(caplog) == []


def test_an_interrupt_during_a_restarted_upload_still_deletes_the_copy(facade, glance):
    glance.fail["upload"] = [RESET, KeyboardInterrupt()]
    with pytest.raises(KeyboardInterrupt):
        facade.upload_image(REGION, master_image(), Source())
    assert glance.records == {} and glance.calls[-1] == "delete"


class CountingSource(Source):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.opened = 0
        self.bytes_given = 0

    def open(self):
        self.opened += 1
        for chunk in super().open():
            self.bytes_given += len(chunk)
            yield chunk


# ---------------------------------------------------------------------------- timeouts
def test_connect_and_read_timeouts_of_the_session_come_from_the_target():
    facade = OpenStackFacade(target(http_timeout=7))
    assert facade.session.timeout == (openstack.CONNECT_TIMEOUT, 7.0) == (10.0, 7.0)


def test_the_data_put_waits_http_timeout_for_every_send(glance):
    facade = OpenStackFacade(target(http_timeout=7))
    facade._session = FakeSession()
    facade._clients[REGION.name] = glance
    facade.upload_image(REGION, master_image(), Source())
    assert glance.timeouts["put"] == (7.0, 7.0)  # urllib3 sends a body under the connect timeout


def test_listing_pages_get_the_read_timeout_until_the_deadline_is_near(clock):
    facade = OpenStackFacade(target(http_timeout=20, list_images_timeout=50))
    facade._session = FakeSession()
    pager = Pager([[record(1)], [record(2)], [record(3)]], clock, step=20)
    with_pager(facade, pager).get_imagelist(REGION)
    assert pager.timeouts == [(10.0, 20.0), (10.0, 20.0), (10.0, 10.0)]


# ---------------------------------------------------------------------------- download resume
class BreakingGlance:
    """GET /file of DATA, whose responses break after ``cut_at`` bytes (one entry per response;
    None = whole); honours ``Range`` unless ``ignore_range``."""

    def __init__(self, cuts, ignore_range=False, error=None, content_range=None):
        self.cuts = list(cuts)
        self.ignore_range = ignore_range
        self.error = error or (lambda: requests.exceptions.ChunkedEncodingError(
            "Connection broken: IncompleteRead(10485760 bytes read, 14680064 more expected)"))
        self.content_range = content_range
        self.requests: list[dict] = []
        self.responses: list[Response] = []

    def get(self, url, timeout=None, headers=None):
        headers = headers or {}
        self.requests.append(dict(headers))
        start = 0
        status = 200
        extra = {}
        if "Range" in headers and not self.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", headers["Range"]).group(1))
            status = 206
            extra["Content-Range"] = self.content_range or f"bytes {start}-{len(DATA) - 1}/{len(DATA)}"
        response = Response(status, extra)
        self.responses.append(response)
        cut = self.cuts.pop(0) if self.cuts else None
        return response, self._body(DATA[start:], cut)

    def get_range(self, url, start):
        return self.get(url, headers={"Range": f"bytes={start}-"})

    def _body(self, data, cut):
        sent = 0
        for i in range(0, len(data), 64 * 1024):
            piece = data[i:i + 64 * 1024]
            if cut is not None and sent + len(piece) > cut:
                yield piece[:cut - sent]
                raise self.error()
            sent += len(piece)
            yield piece


def download(facade, fake) -> bytes:
    facade._clients[REGION.name] = fake
    return b"".join(facade.download_image(REGION, "i1"))


def test_a_broken_download_resumes_from_the_byte_reached(facade, caplog, waits):
    fake = BreakingGlance([MIB + 5])
    assert download(facade, fake) == DATA
    assert fake.requests == [{}, {"Range": f"bytes={MIB + 5}-"}]
    assert all(response.closed for response in fake.responses)
    [line] = warnings(caplog)
    assert line.startswith(f"Spain: connection to Glance failed while downloading image i1, after {MIB + 5} bytes; "
                           "the download resumes from there: retry 1 of 3 in ")
    assert len(waits) == 1


def test_a_server_that_ignores_range_has_the_bytes_already_delivered_skipped(facade, caplog):
    fake = BreakingGlance([MIB + 5, 2 * MIB], ignore_range=True)
    assert download(facade, fake) == DATA
    assert len(fake.requests) == 3 and len(warnings(caplog)) == 2


def test_a_read_timeout_mid_stream_is_resumed_too(facade, caplog):
    timeout = lambda: chained(  # noqa: E731 (what requests raises while iter_content reads)
        requests.exceptions.ConnectionError("HTTPConnectionPool(host='127.0.0.1'): Read timed out."),
        urllib3.exceptions.ReadTimeoutError(None, "/v2/images/i1/file", "Read timed out."))
    assert download(facade, BreakingGlance([MIB + 7], error=timeout)) == DATA
    assert "no answer from Glance in time while downloading image i1, after 1048583 bytes" in warnings(caplog)[0]


def test_a_download_breaking_too_often_fails(facade, caplog):
    fake = BreakingGlance([100, 100, 100, 100, 100])
    with pytest.raises(TransferError, match="^Spain: Download of image i1 Failed. Cause: Connection broken"):
        download(facade, fake)
    assert len(fake.requests) == 4 and len(warnings(caplog)) == 3
    assert all(response.closed for response in fake.responses)


def test_a_resume_answered_with_another_range_fails(facade):
    fake = BreakingGlance([MIB], content_range="bytes 0-99/100")
    with pytest.raises(TransferError, match="asked for the data from byte 1048576, the region sent Content-Range "
                                            "bytes 0-99/100"):
        download(facade, fake)


def test_a_failing_resume_request_counts_as_a_retry(facade, caplog):
    fake = BreakingGlance([MIB])
    real_get = fake.get
    failures = [http_error(503)]

    def get(url, timeout=None, headers=None):
        if headers and failures:
            fake.requests.append(dict(headers))
            raise failures.pop(0)
        return real_get(url, timeout, headers)
    fake.get = get
    assert download(facade, fake) == DATA
    assert [RETRY.search(line).group(1) for line in warnings(caplog)] == ["1", "2"]
    assert "HTTP 503 from Glance while downloading image i1" in warnings(caplog)[1]


def test_a_non_transient_failure_mid_stream_is_not_resumed(facade, caplog):
    fake = BreakingGlance([MIB], error=lambda: requests.exceptions.ContentDecodingError("bad gzip"))
    with pytest.raises(TransferError, match="bad gzip"):
        download(facade, fake)
    assert len(fake.requests) == 1 and warnings(caplog) == []


def test_a_resumed_master_stream_uploads_as_one_continuous_stream(facade, glance, caplog):
    """The hashes carry on: the upload consuming a resumed download verifies against the master."""
    master = OpenStackFacade(target())
    master._session = FakeSession()
    fake = BreakingGlance([MIB + 5])
    master._clients[REGION.name] = fake
    uploaded = facade.upload_image(REGION, master_image(), RegionSource(master, REGION, "i1"))
    assert uploaded.bytes_sent == len(DATA)
    assert glance.records[uploaded.image_id]["status"] == "active"
    assert len(warnings(caplog)) == 1  # one resume, no restart


def test_the_range_header_reaches_the_server_unquoted():
    """glanceclient %-quotes header values (``bytes%3D5-``, which Glance answers with 416): the
    resume request must not go through its header encoding."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from keystoneauth1 import session as ks_session

    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Range"))
            body = b"56789"
            self.send_response(206)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Range", "bytes 5-9/10")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = openstack.GlanceHTTP(ks_session.Session(), endpoint_override=f"http://127.0.0.1:{server.server_address[1]}")
        response, body = client.get_range("/v2/images/i1/file", 5)
        assert (response.status_code, b"".join(body)) == (206, b"56789")
        assert seen == ["bytes=5-"]
    finally:
        server.shutdown()
        server.server_close()


def test_a_refused_resume_request_is_a_glance_connection_failure():
    import socket

    from keystoneauth1 import session as ks_session

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # nothing listens there once closed
    client = openstack.GlanceHTTP(ks_session.Session(), endpoint_override=f"http://127.0.0.1:{port}")
    with pytest.raises(glance_exc.CommunicationError) as caught:
        client.get_range("/v2/images/i1/file", 5)
    assert transient_cause(caught.value) == "connection to Glance failed"
    assert transient_cause(caught.value, create=True) == "connection to Glance failed", "never connected"


def test_the_facade_s_glance_client_is_the_region_s_public_image_endpoint(facade):
    facade._session = None
    facade._clients.clear()
    client = facade._client(REGION)
    assert isinstance(client, openstack.GlanceHTTP)
    assert (client.service_type, client.interface, client.region_name) == ("image", "public", "Spain")
    assert facade._client(REGION) is client
