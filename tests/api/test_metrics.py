"""GET /metrics (README "Monitoring"): Prometheus text, no token, the names of the contract; the
values change with the statuses computed and the tasks run.  (In-process: prometheus_client's
single-process mode; the multiprocess mode under gunicorn is tested on the lab.)"""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from fiwareglancesync.glancesync.status import SyncStatus


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.get_data(as_text=True))
            for sample in family.samples}


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_need_no_token_and_carry_the_statuses_last_computed(client, admin_headers):
    assert client.get("/regions/RegionB", headers=admin_headers).status_code == 200

    samples = scrape(client)

    counts = {status.value: value(samples, "glancesync_images", region="RegionB", status=status.value)
              for status in SyncStatus}
    assert counts == {**{status.value: 0.0 for status in SyncStatus}, "ok": 1.0, "pending_upload": 1.0}
    assert 0 <= value(samples, "glancesync_region_status_age_seconds", region="RegionB") < 60


class SendingEngine:
    """The real engine on the mock, whose report says it streamed 3000 bytes (the mock's own
    uploads are recorded, not sent: 0 bytes)."""

    def __init__(self, real):
        self.real = real

    def show_regions(self):
        return self.real.show_regions()

    def region_status(self, region):
        return self.real.region_status(region)

    def sync_region(self, region, dry_run=False, observer=None):
        report = self.real.sync_region(region, dry_run=dry_run, observer=observer)
        report.bytes_by_method["stream"] += 3000
        return report


def test_a_task_counts_its_outcome_duration_and_bytes(make_app, real_engine, admin_headers):
    client = make_app(engine_factory=lambda: SendingEngine(real_engine())).test_client()
    before = scrape(client)

    assert client.post("/regions/RegionA", headers=admin_headers).status_code == 200  # runs at once

    after = scrape(client)
    assert value(after, "glancesync_tasks_total", region="RegionA", status="synced") == \
        value(before, "glancesync_tasks_total", region="RegionA", status="synced") + 1
    assert value(after, "glancesync_task_duration_seconds_count") == \
        value(before, "glancesync_task_duration_seconds_count") + 1
    assert value(after, "glancesync_transferred_bytes_total", region="RegionA", method="stream") == \
        value(before, "glancesync_transferred_bytes_total", region="RegionA", method="stream") + 3000


def test_metrics_enabled_false_makes_it_a_404(make_app):
    response = make_app(METRICS_ENABLED=False).test_client().get("/metrics")

    assert (response.status_code, response.get_json()) == (404, {"error": {
        "message": "Item not found: /metrics", "code": 404}})


def test_the_metric_names_are_those_of_the_contract(client):
    names = {family.name for family in text_string_to_metric_families(
        client.get("/metrics").get_data(as_text=True))}

    assert {"glancesync_images", "glancesync_region_status_age_seconds", "glancesync_tasks",
            "glancesync_task_duration_seconds", "glancesync_transferred_bytes"} <= names


class CachingEngine(SendingEngine):
    """The real engine on the mock, whose region's image cache holds RegionB's copy."""

    def region_status(self, region):
        from dataclasses import replace

        return [replace(entry, cache="cached" if entry.region_image_id else None)
                for entry in self.real.region_status(region)]


def test_the_image_cache_states_are_counted(make_app, real_engine, admin_headers):
    client = make_app(engine_factory=lambda: CachingEngine(real_engine())).test_client()
    assert client.get("/regions/RegionB", headers=admin_headers).status_code == 200
    samples = scrape(client)
    assert value(samples, "glancesync_images_cache", region="RegionB", state="cached") == 1.0
    assert value(samples, "glancesync_images_cache", region="RegionB", state="queued") == 0.0


class FailingEngine(SendingEngine):
    def sync_region(self, region, dry_run=False, observer=None):
        raise RuntimeError("boom")


def test_the_last_successful_sync_of_each_region_comes_from_the_tasks_on_record(make_app, real_engine,
                                                                                admin_headers):
    import time

    app = make_app(engine_factory=lambda: SendingEngine(real_engine()))
    client = app.test_client()
    assert ("glancesync_region_last_success_timestamp_seconds", (("region", "RegionA"),)) not in scrape(client)
    before = time.time()
    assert client.post("/regions/RegionA", headers=admin_headers).status_code == 200  # synced at once
    synced_at = value(scrape(client), "glancesync_region_last_success_timestamp_seconds", region="RegionA")
    assert before - 1 <= synced_at <= time.time() + 1

    # a failed task does not move it, and a new instance (another process, the same database) tells the same
    failing = make_app(engine_factory=lambda: FailingEngine(real_engine())).test_client()
    assert failing.post("/regions/RegionA", headers=admin_headers).status_code == 200
    samples = scrape(failing)
    assert value(samples, "glancesync_tasks_total", region="RegionA", status="failed") >= 1
    assert value(samples, "glancesync_region_last_success_timestamp_seconds", region="RegionA") == synced_at


def test_metrics_are_served_without_the_last_successes_when_the_database_fails(make_app, monkeypatch, caplog):
    from sqlalchemy.exc import OperationalError

    from fiwareglancesync.app import services

    def broken():
        raise OperationalError("SELECT ...", {}, Exception("connection refused (password=secret)"))

    monkeypatch.setattr(services, "last_successful_syncs", broken)
    response = make_app().test_client().get("/metrics")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "glancesync_images" in text and "glancesync_region_last_success_timestamp_seconds" not in text
    assert "cannot be read from the database: OperationalError" in caplog.text and "secret" not in caplog.text


def store_snapshot(app, region, statuses, taken_at, error=None, cache=()):
    """A region's status snapshot as another instance would have stored it."""
    import json
    from datetime import datetime, timezone

    from fiwareglancesync.app.extensions import db
    from fiwareglancesync.app.models import RegionSnapshot

    images = [{"name": f"i{n}", "status": status, "id": None, "message": None, "lineage": None,
               "cache": cache[n] if n < len(cache) else None} for n, status in enumerate(statuses)]
    with app.app_context():
        db.session.merge(RegionSnapshot(region=region, images=json.dumps(images), error=error,
                                        taken_at=datetime.fromtimestamp(taken_at, timezone.utc).replace(tzinfo=None)))
        db.session.commit()


def computed_here(region, statuses, at):
    from fiwareglancesync.app import metrics
    from fiwareglancesync.glancesync.status import StatusEntry
    from tests.factories import image

    metrics.record_statuses(region, [StatusEntry(SyncStatus(status), image(name=f"i{n}"), None)
                                     for n, status in enumerate(statuses)], at=at)


def test_each_region_shows_the_newest_statuses_of_this_process_or_of_the_database(make_app):
    """An instance that did not compute a region's statuses lately (another instance refreshes
    them, or ran the task) shows those the database holds, so no instance's series go stale."""
    import time

    app = make_app()
    now = time.time()
    computed_here("StaleHere", ["pending_upload", "pending_upload"], at=now - 7200)
    store_snapshot(app, "StaleHere", ["ok", "ok"], taken_at=now - 60, cache=["cached"])  # synced elsewhere since
    computed_here("FreshHere", ["pending_metadata"], at=now - 10)
    store_snapshot(app, "FreshHere", ["ok"], taken_at=now - 600)
    store_snapshot(app, "OnlyStored", ["ok", "error_checksum"], taken_at=now - 30)
    store_snapshot(app, "FailedRefresh", ["ok"], taken_at=now - 5, error="RegionX: cannot be listed")

    samples = scrape(app.test_client())

    def counts(region):
        return {status.value: value(samples, "glancesync_images", region=region, status=status.value)
                for status in SyncStatus if value(samples, "glancesync_images", region=region, status=status.value)}

    assert counts("StaleHere") == {"ok": 2.0}
    assert value(samples, "glancesync_images_cache", region="StaleHere", state="cached") == 1.0
    assert 59 <= value(samples, "glancesync_region_status_age_seconds", region="StaleHere") < 120
    assert counts("FreshHere") == {"pending_metadata": 1.0}
    assert abs(value(samples, "glancesync_region_status_timestamp_seconds", region="FreshHere") - (now - 10)) < 1
    assert counts("OnlyStored") == {"ok": 1.0, "error_checksum": 1.0}
    assert value(samples, "glancesync_images", region="OnlyStored", status="pending_upload") == 0.0  # zeros too
    assert ("glancesync_images", (("region", "FailedRefresh"), ("status", "ok"))) not in samples
