"""Every request answers within REQUEST_TIMEOUT (issue 10): a Keystone or Glance that does not
answer gives a JSON 503, never a hung worker; a cloud that answers badly stays 502.

The clouds here are made to hang on an Event the test releases at its end, with a
REQUEST_TIMEOUT of a few hundredths of a second (a float: the Flask setting takes one)."""

from __future__ import annotations

import threading
import time

import pytest

from fiwareglancesync.app import auth, bounded
from fiwareglancesync.glancesync.errors import FacadeError, ListingTimeout

TIMEOUT = 0.05


@pytest.fixture
def hang():
    release = threading.Event()
    yield release
    release.set()


class HangingEngine:
    def __init__(self, release, real):
        self.release, self.real = release, real

    def show_regions(self):
        return self.real.show_regions()

    def region_status(self, region):
        self.release.wait(10)
        return self.real.region_status(region)

    def sync_region(self, region, dry_run=False, observer=None):
        return self.real.sync_region(region, dry_run=dry_run, observer=observer)


class HangingValidator:
    def __init__(self, release):
        self.release = release

    def validate(self, token):
        self.release.wait(10)
        raise AssertionError("released")


def answer(response) -> tuple[int, str, str]:
    body = response.get_json()
    return response.status_code, response.mimetype, body["error"]["message"]


def test_a_glance_that_does_not_answer_is_503_within_the_request_timeout(make_app, real_engine, hang,
                                                                         admin_headers):
    client = make_app(engine_factory=lambda: HangingEngine(hang, real_engine()),
                      REQUEST_TIMEOUT=TIMEOUT).test_client()

    started = time.monotonic()
    response = client.get("/regions/RegionA", headers=admin_headers)

    assert time.monotonic() - started < 2
    assert answer(response) == (503, "application/json",
                                f"Keystone or Glance did not answer in time (REQUEST_TIMEOUT = {TIMEOUT} s) "
                                "while reading the status of region RegionA")


def test_a_keystone_that_does_not_validate_a_new_token_is_503(make_app, hang):
    client = make_app(TOKEN_VALIDATOR=HangingValidator(hang), REQUEST_TIMEOUT=TIMEOUT).test_client()

    for method, path in (("GET", "/regions/RegionA"), ("POST", "/regions/RegionA"),
                         ("GET", "/regions/RegionA/tasks/x"), ("DELETE", "/regions/RegionA/tasks/x")):
        response = client.open(path, method=method, headers={"X-Auth-Token": "new-token"})
        assert answer(response) == (503, "application/json",
                                    f"Keystone or Glance did not answer in time (REQUEST_TIMEOUT = {TIMEOUT} s) "
                                    "while validating the token with Keystone")


def test_a_cached_token_with_a_cloud_that_does_not_answer_is_503(make_app, real_engine, hang, admin_headers):
    engines = [real_engine]
    client = make_app(engine_factory=lambda: engines[0](), REQUEST_TIMEOUT=TIMEOUT).test_client()
    assert client.get("/regions/RegionA", headers=admin_headers).status_code == 200  # token now cached
    engines[0] = lambda: HangingEngine(hang, real_engine())

    assert answer(client.get("/regions/RegionA", headers=admin_headers))[0] == 503


def test_backend_errors_raised_in_the_call_reach_the_request(make_app, admin_headers):
    class Broken:
        def show_regions(self):
            return ["RegionA"]

        def region_status(self, region):
            raise FacadeError(f"{region}: Error retrieving image list. Cause: HTTP 500 Internal Server Error", region)

    client = make_app(engine_factory=Broken).test_client()

    assert answer(client.get("/regions/RegionA", headers=admin_headers))[0] == 502


def failing_with(error):
    """An engine factory whose region status raises ``error``."""
    class Failing:
        def show_regions(self):
            return ["RegionA"]

        def region_status(self, region):
            raise error

    return Failing


@pytest.mark.parametrize("error", [
    ListingTimeout("RegionA: Timeout while retrieving image list.", "RegionA"),
    FacadeError("RegionA: Error retrieving image list. Cause: Unable to establish connection to "
                "http://127.0.0.1:9/v2/images: ConnectFailure", "RegionA", unreachable=True),
    FacadeError("master: Error retrieving the regions. Cause: ConnectTimeout: Request to "
                "http://127.0.0.1:5000/v3/auth/tokens timed out", None, unreachable=True),
], ids=["listing timeout", "connection refused", "keystone timeout"])
def test_a_cloud_that_cannot_be_reached_is_503(make_app, admin_headers, error):
    client = make_app(engine_factory=failing_with(error)).test_client()

    assert answer(client.get("/regions/RegionA", headers=admin_headers)) == (503, "application/json", str(error))


def test_the_facade_s_flag_decides_not_the_wording_of_the_message(make_app, admin_headers):
    """A server that answered with an error is 502 even when its message mentions a timeout."""
    error = FacadeError("RegionA: Error retrieving image list. Cause: HTTP 500 upstream timed out", "RegionA")
    client = make_app(engine_factory=failing_with(error)).test_client()

    assert answer(client.get("/regions/RegionA", headers=admin_headers))[0] == 502


def test_too_many_pending_calls_is_503_at_once(make_app, admin_headers, monkeypatch):
    monkeypatch.setattr(bounded, "_slots", threading.BoundedSemaphore(1))
    bounded._slots.acquire()
    client = make_app().test_client()

    status, _, message = answer(client.get("/regions/RegionA", headers=admin_headers))

    assert (status, message) == (503, "Too many calls to Keystone or Glance are still waiting for an answer; "
                                      "not validating the token with Keystone")


def test_request_timeout_defaults_to_30_seconds(make_app):
    assert make_app().config["REQUEST_TIMEOUT"] == 30


def test_the_token_check_itself_is_unchanged_outside_a_request():
    class Validator:
        def validate(self, token):
            raise auth.ApiError(401, auth.INVALID_TOKEN)

    authenticator = auth.Authenticator(Validator(), auth.TokenCache(300))
    with pytest.raises(auth.ApiError):
        authenticator.authenticate("t")
