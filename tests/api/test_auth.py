"""X-Auth-Token validation: Keystone mocked at the HTTP level (python-keystoneclient runs for real)."""

import pytest
import requests
import requests_mock as requests_mock_module
from keystoneauth1 import exceptions as ks_exc

from fiwareglancesync.app import auth
from fiwareglancesync.app.auth import TokenCache, TokenInfo
from fiwareglancesync.app.errors import ApiError

from .conftest import KEYSTONE_URL

PROTECTED = [
    ("GET", "/regions/RegionA"),
    ("POST", "/regions/RegionA"),
    ("GET", "/regions/RegionA/tasks/0f0e0d0c"),
    ("DELETE", "/regions/RegionA/tasks/0f0e0d0c"),
]
IDS = [f"{m} {p}" for m, p in PROTECTED]


def error(response):
    return response.status_code, response.get_json()


@pytest.mark.parametrize("method, path", PROTECTED, ids=IDS)
def test_missing_token_is_401(client, method, path):
    assert error(client.open(path, method=method)) == (401, {"error": {"message": auth.NO_TOKEN, "code": 401}})


@pytest.mark.parametrize("method, path", PROTECTED, ids=IDS)
def test_empty_token_is_401(client, method, path):
    response = client.open(path, method=method, headers={"X-Auth-Token": "  "})

    assert error(response) == (401, {"error": {"message": auth.EMPTY_TOKEN, "code": 401}})


@pytest.mark.parametrize("method, path", PROTECTED, ids=IDS)
def test_garbage_token_is_401(client, keystone, method, path):
    response = client.open(path, method=method, headers={"X-Auth-Token": "not-a-token"})

    assert error(response) == (401, {"error": {"message": auth.INVALID_TOKEN, "code": 401}})
    assert keystone.validations == 1


def test_expired_token_is_401(client, keystone):
    token = keystone.issue("admin", ("admin",), expires_in=-60)

    response = client.get("/regions/RegionA", headers={"X-Auth-Token": token})

    assert error(response) == (401, {"error": {"message": auth.EXPIRED_TOKEN, "code": 401}})


@pytest.mark.parametrize("method, path", PROTECTED, ids=IDS)
def test_token_without_admin_role_is_401(client, keystone, method, path):
    token = keystone.issue("qa", ("member", "reader"), project="tenant-qa")

    response = client.open(path, method=method, headers={"X-Auth-Token": token})

    assert error(response) == (401, {"error": {"message": auth.NOT_ADMIN, "code": 401}})


def test_unscoped_token_without_roles_is_401(client, keystone):
    token = keystone.issue("admin", (), project=None)

    response = client.get("/regions/RegionA", headers={"X-Auth-Token": token})

    assert error(response) == (401, {"error": {"message": auth.NO_ROLES, "code": 401}})


def test_refused_post_starts_no_task(client, keystone, admin_headers):
    token = keystone.issue("qa", ("member",))

    client.post("/regions/RegionA", headers={"X-Auth-Token": token})

    # The admin sees a fresh task created by its own POST: nothing was left by the refused one.
    first = client.post("/regions/RegionA", headers=admin_headers).get_json()
    assert client.get(f"/regions/RegionA/tasks/{first['taskId']}", headers=admin_headers).get_json()["status"] == "synced"


def test_token_is_checked_before_the_region(client):
    assert client.get("/regions/Atlantis").status_code == 401


def test_admin_token_is_accepted(client, admin_headers):
    assert client.get("/regions/RegionA", headers=admin_headers).status_code == 200


def test_validated_token_is_cached(client, keystone, admin_headers):
    for _ in range(5):
        assert client.get("/regions/RegionA", headers=admin_headers).status_code == 200

    assert keystone.validations == 1
    assert keystone.service_logins == 1


def test_cache_can_be_disabled(make_app, keystone, admin_headers):
    client = make_app(TOKEN_CACHE_SECONDS=0).test_client()

    for _ in range(3):
        client.get("/regions/RegionA", headers=admin_headers)

    assert keystone.validations == 3


def test_token_about_to_expire_is_accepted_but_not_cached(client, keystone):
    token = keystone.issue("admin", ("admin",), expires_in=10)

    for _ in range(2):
        assert client.get("/regions/RegionA", headers={"X-Auth-Token": token}).status_code == 200

    assert keystone.validations == 2


def test_token_unknown_to_keystone_is_not_cached(client, keystone):
    for _ in range(2):
        client.get("/regions/RegionA", headers={"X-Auth-Token": "garbage"})

    assert keystone.validations == 2


def test_cached_non_admin_token_stays_refused(client, keystone):
    token = keystone.issue("qa", ("member",))

    statuses = [client.get("/regions/RegionA", headers={"X-Auth-Token": token}).status_code for _ in range(2)]

    assert statuses == [401, 401]
    assert keystone.validations == 1


def test_wrong_service_credentials_are_a_server_error(make_app, admin_headers):
    client = make_app(KEYSTONE_ADMIN_PASSWORD="wrong").test_client()

    response = client.get("/regions/RegionA", headers=admin_headers)

    assert error(response) == (500, {"error": {"message": auth.BAD_SERVICE_CREDENTIALS, "code": 500}})


def test_unreachable_keystone_is_503(make_app, requests_mock, admin_headers):
    requests_mock.register_uri(requests_mock_module.ANY, "http://down.test:5000/v3/auth/tokens",
                               exc=requests.exceptions.ConnectionError("refused"))
    client = make_app(KEYSTONE_AUTH_URL="http://down.test:5000/v3").test_client()

    response = client.get("/regions/RegionA", headers=admin_headers)

    assert response.status_code == 503
    assert response.get_json()["error"]["message"].startswith("Keystone at http://down.test:5000/v3 cannot be reached")


def test_keystone_failing_the_validation_is_502(client, keystone, requests_mock, admin_headers):
    client.get("/")  # nothing cached yet; make the validation call fail
    requests_mock.register_uri("GET", f"{KEYSTONE_URL}/v3/auth/tokens", status_code=500,
                               json={"error": {"code": 500, "message": "boom", "title": "Internal Server Error"}})

    response = client.get("/regions/RegionA", headers=admin_headers)

    assert response.status_code == 502
    assert response.get_json()["error"]["message"].startswith(f"Keystone at {KEYSTONE_URL}/v3 failed to validate")


@pytest.fixture
def v2_client(make_app):
    return make_app(KEYSTONE_AUTH_URL=f"{KEYSTONE_URL}/v2.0", KEYSTONE_API_VERSION="2.0").test_client()


def test_keystone_v2_admin_token_is_accepted(v2_client, admin_headers):
    assert v2_client.get("/regions/RegionA", headers=admin_headers).status_code == 200


def test_keystone_v2_non_admin_token_is_401(v2_client, keystone):
    token = keystone.issue("qa", ("_member_",))

    response = v2_client.get("/regions/RegionA", headers={"X-Auth-Token": token})

    assert error(response) == (401, {"error": {"message": auth.NOT_ADMIN, "code": 401}})


def test_keystone_v2_garbage_token_is_401(v2_client):
    response = v2_client.get("/regions/RegionA", headers={"X-Auth-Token": "garbage"})

    assert error(response) == (401, {"error": {"message": auth.INVALID_TOKEN, "code": 401}})


# ------------------------------------------------------------------------------ TokenCache
class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def info_expiring_at(epoch: float) -> TokenInfo:
    from datetime import datetime, timezone

    return TokenInfo("admin", "admin-id", "admin", frozenset({"admin"}), datetime.fromtimestamp(epoch, timezone.utc))


def test_cache_keeps_a_token_at_most_max_seconds():
    clock = Clock(1_000_000.0)
    cache = TokenCache(max_seconds=300, clock=clock)
    cache.put("t", info_expiring_at(clock.now + 3600))

    clock.now += 299
    assert cache.get("t") is not None
    clock.now += 2
    assert cache.get("t") is None


def test_cache_drops_a_token_shortly_before_it_expires():
    clock = Clock(1_000_000.0)
    cache = TokenCache(max_seconds=3600, clock=clock)
    cache.put("t", info_expiring_at(clock.now + 100))

    clock.now += 100 - auth.EXPIRY_MARGIN_SECONDS - 1
    assert cache.get("t") is not None
    clock.now += 2
    assert cache.get("t") is None


def test_cache_is_bounded():
    clock = Clock(1_000_000.0)
    cache = TokenCache(max_seconds=300, clock=clock, max_entries=3)
    for name in "abcd":
        cache.put(name, info_expiring_at(clock.now + 3600))

    assert cache.get("a") is None
    assert [cache.get(name) is not None for name in "bcd"] == [True, True, True]


def test_concurrent_requests_with_one_new_token_share_one_validation():
    import threading
    from datetime import datetime, timedelta, timezone

    calls, release = [], threading.Event()

    class SlowValidator:
        def validate(self, token):
            calls.append(token)
            release.wait(5)
            return auth.TokenInfo("admin", "u1", "admin", frozenset({"admin"}),
                                  datetime.now(timezone.utc) + timedelta(hours=1))

    authenticator = auth.Authenticator(SlowValidator(), auth.TokenCache(300))
    results = []
    threads = [threading.Thread(target=lambda: results.append(authenticator.authenticate("new").user))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    while not calls:
        threading.Event().wait(0.001)
    release.set()
    for thread in threads:
        thread.join(5)

    assert (len(calls), results) == (1, ["admin"] * 8)


@pytest.mark.parametrize("raised, expected", [
    (ks_exc.Unauthorized("no"), (401, "refused")),
    (ks_exc.ConnectFailure("refused connection"), (503, "Keystone at K cannot be reached: ConnectFailure")),
    (ks_exc.ConnectTimeout("slow"), (503, "Keystone at K cannot be reached: ConnectTimeout")),
    (ks_exc.InternalServerError("it broke"), (502, "Keystone at K failed the check: it broke (HTTP 500)")),
])
def test_keystone_outcomes_map_keystoneauth_errors_to_the_services(raised, expected):
    with pytest.raises(ApiError) as caught:
        with auth.keystone_outcomes("Keystone at K", "failed the check", refused=auth.REFUSED,
                                    refusal=lambda: ApiError(401, "refused")):
            raise raised
    assert (caught.value.code, caught.value.message) == expected


def test_keystone_outcomes_without_a_refusal_treat_a_refusal_as_a_failure():
    with pytest.raises(ApiError) as caught:
        with auth.keystone_outcomes("Keystone at K", "failed the check"):
            raise ks_exc.Unauthorized("no")
    assert caught.value.code == 502
