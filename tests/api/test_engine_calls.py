"""What each request costs: engines built, region listings, Keystone requests (README "The REST
service").

The engine here is the real one on the mock cloud, wrapped to count its construction and to do
what an engine on a real cloud does when it lists regions: log in to Keystone (here the fake
Keystone of the tests, which counts every request it gets).
"""

from __future__ import annotations

import threading
import time

import pytest
import requests

from fiwareglancesync.app import services
from fiwareglancesync.app.errors import ShuttingDown
from fiwareglancesync.app.extensions import db
from fiwareglancesync.app.models import Task, TaskStatus
from fiwareglancesync.app.state import RegionCache
from fiwareglancesync.glancesync.identity import ProcessIdentity

from .conftest import KEYSTONE_URL, ManualRunner
from .fake_keystone import SERVICE_PASSWORD, SERVICE_PROJECT, SERVICE_USER

VALIDATION = ("GET", "/v3/auth/tokens")
BAD_REGION = {"error": {"message": "Bad region", "code": 410}}


class CountingEngines:
    """An engine factory that counts the engines it builds and their region listings."""

    def __init__(self, real_engine):
        self.real_engine = real_engine
        self.built: list[CountingEngine] = []
        self.listings = 0
        self.synced_by: list[CountingEngine] = []

    def __call__(self) -> "CountingEngine":
        engine = CountingEngine(self, self.real_engine())
        self.built.append(engine)
        return engine


class CountingEngine:
    def __init__(self, counts: CountingEngines, engine):
        self.counts = counts
        self.engine = engine

    def show_regions(self):
        self.counts.listings += 1
        # A real engine logs in to the Keystone of its target to read the catalog.
        response = requests.post(f"{KEYSTONE_URL}/v3/auth/tokens", json={"auth": {"identity": {
            "methods": ["password"], "password": {"user": {
                "name": SERVICE_USER, "password": SERVICE_PASSWORD, "domain": {"name": "Default"}}}},
            "scope": {"project": {"name": SERVICE_PROJECT, "domain": {"name": "Default"}}}}})
        assert response.status_code == 201
        return self.engine.show_regions()

    def region_status(self, region):
        return self.engine.region_status(region)

    def sync_region(self, region, dry_run=False, observer=None):
        self.counts.synced_by.append(self)
        return self.engine.sync_region(region, dry_run=dry_run, observer=observer)


@pytest.fixture
def engines(real_engine) -> CountingEngines:
    return CountingEngines(real_engine)


class Calls:
    """Engines built and Keystone requests made by one request of the client."""

    def __init__(self, client, keystone, engines):
        self.client, self.keystone, self.engines = client, keystone, engines

    def __call__(self, method, path, token):
        engines_before, requests_before = len(self.engines.built), len(self.keystone.requests)
        response = self.client.open(path, method=method, headers={"X-Auth-Token": token})
        return (response, len(self.engines.built) - engines_before,
                self.keystone.requests[requests_before:])


@pytest.fixture
def calls(make_app, keystone, engines):
    def build(**options):
        return Calls(make_app(engine_factory=engines, **options).test_client(), keystone, engines)
    return build


def add_task(app, region="RegionA", status=TaskStatus.SYNCED) -> str:
    with app.app_context():
        task = Task(region=region, status=status, owner=str(ProcessIdentity.current()))
        db.session.add(task)
        db.session.commit()
        return task.id


def test_task_get_and_delete_build_no_engine_and_ask_keystone_only_to_validate_the_token(calls, keystone):
    call = calls()
    app = call.client.application
    task_id = add_task(app)  # the region cache of this fresh app is cold

    response, built, requests_made = call("GET", f"/regions/RegionA/tasks/{task_id}", keystone.issue())
    assert response.status_code == 200, response.get_json()
    # The service's own login comes first (once per process), then the caller's validation.
    assert (built, requests_made) == (0, [("POST", "/v3/auth/tokens"), VALIDATION])

    response, built, requests_made = call("GET", f"/regions/RegionA/tasks/{task_id}", keystone.issue())
    assert (response.status_code, built, requests_made) == (200, 0, [VALIDATION])

    token = keystone.issue()
    response, built, requests_made = call("DELETE", f"/regions/RegionA/tasks/{task_id}", token)
    assert (response.status_code, built, requests_made) == (200, 0, [VALIDATION])

    response, built, requests_made = call("GET", f"/regions/RegionA/tasks/{add_task(app)}", token)
    assert (response.status_code, built, requests_made) == (200, 0, [])  # the token is cached


def test_post_builds_one_engine_which_runs_the_task(calls, keystone, engines):
    call = calls()
    token = keystone.issue()

    response, built, _ = call("POST", "/regions/RegionA", token)  # cold cache: the engine lists, then syncs

    assert (response.status_code, built, engines.listings) == (200, 1, 1)
    assert engines.synced_by == engines.built

    response, built, requests_made = call("POST", "/regions/RegionA", token)  # warm cache

    assert (response.status_code, built, requests_made, engines.listings) == (200, 1, [], 1)
    assert engines.synced_by == engines.built


def test_post_with_separate_request_and_task_engines_builds_one_task_engine(calls, keystone, engines, real_engine):
    call = calls()
    tasks = CountingEngines(real_engine)
    call.client.application.extensions["glancesync"].task_engine_factory = tasks
    token = keystone.issue()

    response, built, _ = call("POST", "/regions/RegionA", token)  # cold cache: the task engine lists, then syncs

    assert (response.status_code, built, len(tasks.built), tasks.listings) == (200, 0, 1, 1)
    assert tasks.synced_by == tasks.built

    response, built, _ = call("POST", "/regions/RegionA", token)  # warm cache: one task engine, no listing

    assert (response.status_code, built, len(tasks.built), tasks.listings) == (200, 0, 2, 1)
    assert tasks.synced_by == tasks.built


def test_post_to_a_region_already_syncing_builds_no_engine(calls, keystone, engines):
    runner = ManualRunner()
    call = calls(runner=runner)
    token = keystone.issue()
    first = call("POST", "/regions/RegionA", token)[0].get_json()

    response, built, requests_made = call("POST", "/regions/RegionA", token)

    assert (response.get_json(), built, requests_made) == (first, 0, [])
    assert runner.run_all() == 1
    assert len(engines.synced_by) == 1


def test_region_status_lists_the_regions_once_per_ttl(calls, keystone, engines):
    call = calls()
    token = keystone.issue()
    regions = call.client.application.extensions["glancesync"].regions
    now = [1000.0]
    regions.clock = lambda: now[0]

    for _ in range(3):
        response, built, _ = call("GET", "/regions/RegionB", token)
        assert (response.status_code, built) == (200, 1)
    assert engines.listings == 1

    now[0] += 59.9
    assert call("GET", "/regions/RegionB", token)[0].status_code == 200
    assert engines.listings == 1
    now[0] += 0.2
    assert call("GET", "/regions/RegionB", token)[0].status_code == 200
    assert engines.listings == 2


def test_regions_ttl_defaults_to_60_seconds_and_is_configurable(make_app):
    assert make_app().extensions["glancesync"].regions.ttl == 60
    assert make_app(REGIONS_TTL=5).extensions["glancesync"].regions.ttl == 5


@pytest.mark.parametrize("method, path", [("GET", "/regions/Atlantis"), ("POST", "/regions/Atlantis"),
                                          ("GET", "/regions/Atlantis/tasks/0f0e0d0c"),
                                          ("DELETE", "/regions/Atlantis/tasks/0f0e0d0c")])
def test_bad_region_with_a_warm_cache_builds_no_engine(calls, keystone, engines, method, path):
    call = calls()
    token = keystone.issue()
    assert call("GET", "/regions/RegionA", token)[0].status_code == 200  # warms the cache

    response, built, requests_made = call(method, path, token)

    assert (response.status_code, response.get_json(), built, requests_made) == (410, BAD_REGION, 0, [])
    assert engines.listings == 1


def test_unknown_task_of_a_listed_region_is_404_after_one_listing(calls, keystone, engines):
    call = calls()
    token = keystone.issue()
    call("GET", "/regions/RegionA", token)

    response, built, _ = call("GET", "/regions/RegionA/tasks/no-such-task", token)

    assert (response.status_code, built, engines.listings) == (404, 0, 1)


# ------------------------------------------------------------------ starting a task can fail
class ClosedRunner:
    def submit(self, work):
        raise RuntimeError("cannot schedule new futures after shutdown")


def test_post_while_shutting_down_is_503_and_the_task_is_recorded_failed(make_app, admin_headers):
    app = make_app(runner=ClosedRunner())

    response = app.test_client().post("/regions/RegionA", headers=admin_headers)

    assert (response.status_code, response.get_json()) == (
        503, {"error": {"message": ShuttingDown().message, "code": 503}})
    with app.app_context():
        task = db.session.execute(db.select(Task)).scalar_one()
        assert (task.status, task.message) == (TaskStatus.FAILED, "not started: cannot schedule new futures "
                                                                  "after shutdown")


def test_post_losing_every_race_for_the_region_is_503(make_app, admin_headers, monkeypatch):
    app = make_app(runner=ManualRunner())
    add_task(app, status=TaskStatus.SYNCING)
    monkeypatch.setattr(services, "_syncing_task", lambda region: None)  # another request's row, unseen

    response = app.test_client().post("/regions/RegionA", headers=admin_headers)

    assert (response.status_code, response.get_json()) == (503, {"error": {
        "message": "Could not start a task for region RegionA: too much contention, try again", "code": 503}})


def test_services_know_no_http_status():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(services))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names}
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "ApiError" not in imported and "abort" not in imported
    assert not {m for m in modules if m and m.startswith("werkzeug")}


# ------------------------------------------------------------------ the region cache itself
def test_region_cache_lists_once_for_concurrent_callers():
    cache = RegionCache(ttl=60)
    listings = []
    barrier = threading.Barrier(8)

    def slow_listing():
        listings.append(1)
        time.sleep(0.05)
        return ["RegionA"]

    results = []

    def caller():
        barrier.wait(5)
        results.append(cache.names(slow_listing))

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)

    assert (len(listings), results) == (1, [frozenset({"RegionA"})] * 8)


def test_region_cache_keeps_nothing_from_a_failed_listing():
    cache = RegionCache(ttl=60)

    def failing():
        raise RuntimeError("keystone down")

    with pytest.raises(RuntimeError):
        cache.names(failing)
    assert not cache.is_warm()
    assert cache.names(lambda: ["RegionB"]) == {"RegionB"}
    assert cache.is_warm()


def test_region_cache_with_ttl_0_lists_every_time():
    cache = RegionCache(ttl=0)
    listings = []

    for _ in range(3):
        cache.names(lambda: listings.append(1) or ["R"])

    assert len(listings) == 3
