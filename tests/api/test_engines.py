"""The per-process EnginePool (issue 10): facades, and so Keystone sessions, kept across requests;
a fresh engine (fresh master catalogue) per request; bounded facades for requests; the
configuration read again when glancesync.conf changes."""

from __future__ import annotations

import os

import pytest

from fiwareglancesync.app import create_app
from fiwareglancesync.app.engines import EnginePool
from fiwareglancesync.glancesync.facades import make_facade

from .conftest import service_config


class CountingFacades:
    """make_facade, counting the facades built and the master listings of each."""

    def __init__(self):
        self.built = []
        self.master_listings = 0

    def __call__(self, target, environ):
        facade = make_facade(target, environ)
        self.built.append(facade)
        listing = facade.get_imagelist
        counts = self

        def get_imagelist(region):
            if region.name == "Master":
                counts.master_listings += 1
            return listing(region)

        facade.get_imagelist = get_imagelist
        return facade


@pytest.fixture
def facades():
    return CountingFacades()


@pytest.fixture
def pool(engine_env, facades):
    return EnginePool(request_timeout=7, environ=engine_env, facade_factory=facades)


def test_request_engines_share_one_facade_per_target_and_list_the_master_each_time(pool, facades):
    for _ in range(3):
        engine = pool.request_engine()
        assert [entry.status.value for entry in engine.region_status("RegionB")] == ["ok", "pending_upload"]

    assert len(facades.built) == 1  # one target: master; its session would be kept
    assert facades.master_listings == 3  # ... but the master catalogue is fresh for each request
    assert pool.loads == 1


def test_request_facades_are_bounded_by_the_request_timeout_and_do_not_retry(pool, facades):
    pool.request_engine().show_regions()

    target = facades.built[0].target
    assert (target.http_timeout, target.list_images_timeout, target.retries) == (7, 7, 0)


def test_a_small_target_timeout_is_kept(engine_env, facades):
    conf = engine_env["GLANCESYNC_CONFIG"]
    with open(conf, "a", encoding="utf-8") as stream:
        stream.write("http_timeout = 3\n")
    pool = EnginePool(request_timeout=30, environ=engine_env, facade_factory=facades)

    pool.request_engine().show_regions()

    assert (facades.built[0].target.http_timeout, facades.built[0].target.list_images_timeout) == (3, 30)


def test_task_engines_get_facades_of_their_own_with_the_targets_timeouts(pool, facades):
    pool.request_engine().show_regions()
    pool.task_engine().show_regions()
    pool.task_engine().show_regions()

    assert len(facades.built) == 3
    assert [(f.target.http_timeout, f.target.retries) for f in facades.built[1:]] == [(60, 3), (60, 3)]


def test_a_changed_glancesync_conf_is_read_again_and_the_facades_are_rebuilt(pool, facades, engine_env):
    pool.request_engine().show_regions()
    pool.request_engine().show_regions()
    assert (pool.loads, len(facades.built)) == (1, 1)

    conf = engine_env["GLANCESYNC_CONFIG"]
    with open(conf, "a", encoding="utf-8") as stream:
        stream.write("ignore_regions = RegionB\n")
    stat = os.stat(conf)
    os.utime(conf, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))

    assert pool.request_engine().show_regions() == ["RegionA"]
    assert (pool.loads, len(facades.built)) == (2, 2)


def test_the_app_without_an_injected_factory_uses_a_pool(tmp_path, engine_env, monkeypatch):
    for key, value in engine_env.items():
        monkeypatch.setenv(key, value)
    app = create_app(service_config(tmp_path, REQUEST_TIMEOUT=12))

    state = app.extensions["glancesync"]
    assert state.engine_factory.__self__ is state.task_engine_factory.__self__
    assert isinstance(state.engine_factory.__self__, EnginePool)
    assert state.engine_factory.__self__.request_timeout == 12


# ------------------------------------------------------------------ coalesced listings
def test_concurrent_callers_share_a_listing_that_started_after_they_asked():
    import threading

    from fiwareglancesync.app.coalesce import SharedCalls

    coalescer = SharedCalls(fresh=True)
    first_started, release_first = threading.Event(), threading.Event()
    calls = []

    def listing():
        calls.append(len(calls))
        if len(calls) == 1:
            first_started.set()
            release_first.wait(5)
        return [f"listing {len(calls)}"]

    results = {}
    first = threading.Thread(target=lambda: results.setdefault("first", coalescer.call("R", listing)))
    first.start()
    assert first_started.wait(5)
    # Five callers arrive while the first listing runs: it started before them, so they wait for
    # the next one, which they all share.
    late = [threading.Thread(target=lambda i=i: results.setdefault(i, coalescer.call("R", listing)))
            for i in range(5)]
    for thread in late:
        thread.start()
    assert coalescer.wait_for_callers("R", 5, timeout=5)
    release_first.set()
    for thread in [first, *late]:
        thread.join(5)

    assert results == {"first": ["listing 1"], **{i: ["listing 2"] for i in range(5)}}
    assert coalescer.calls == len(calls) == 2


def test_a_failed_listing_fails_the_callers_of_its_round_only():
    from fiwareglancesync.app.coalesce import SharedCalls

    coalescer = SharedCalls(fresh=True)

    def failing():
        raise RuntimeError("glance down")

    with pytest.raises(RuntimeError):
        coalescer.call("R", failing)
    assert coalescer.call("R", lambda: [1]) == [1]
    assert coalescer.call("other", lambda: [2]) == [2]


def test_each_caller_gets_its_own_list():
    from types import SimpleNamespace

    from fiwareglancesync.app.engines import CoalescingFacade

    shared = [1, 2]
    facade = CoalescingFacade(SimpleNamespace(get_imagelist=lambda region: shared))
    got = facade.get_imagelist(SimpleNamespace(fullname="R"))
    got.append(3)

    assert shared == [1, 2]


def test_the_service_s_coordination_url_replaces_glancesync_conf_s(engine_env, facades):
    """COORDINATION_URL (README "Running on several hosts"): the locks of the service's tasks live
    there; without it, in glancesync.conf's (file://<lock_dir> by default)."""
    own = EnginePool(request_timeout=7, environ=engine_env, facade_factory=facades)
    assert own.task_engine().config.locks_url.startswith("file:///")
    shared = EnginePool(request_timeout=7, environ=engine_env, facade_factory=facades,
                        coordination_url="etcd3+http://127.0.0.1:2379")
    assert shared.task_engine().config.locks_url == "etcd3+http://127.0.0.1:2379"
    assert shared.request_engine().config.locks_url == "etcd3+http://127.0.0.1:2379"
