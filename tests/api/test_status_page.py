"""GET /status (README "The status page") in-process: login with a Keystone account with admin, the
summary (a row per region) and a region's page (its images) from the snapshots the background
refresh stores, their status filters, the sync button behind a CSRF token, the session cookie's
attributes, a federation of 20 regions x 300 images.  (The real browser on the real lab:
tests/integration/test_status_page_lab.py.)"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from fiwareglancesync.app import auth, services, status_page
from fiwareglancesync.app.extensions import db
from fiwareglancesync.app.models import RegionSnapshot, Task, TaskStatus

from .conftest import ManualRunner
from .mock_cloud import federation_seed, seed_mock_store
from .fake_keystone import SERVICE_PASSWORD, SERVICE_PROJECT, SERVICE_USER

LOGIN = {"username": SERVICE_USER, "password": SERVICE_PASSWORD, "project": SERVICE_PROJECT, "domain": "Default"}


def refresh(app) -> int:
    state = app.extensions["glancesync"]
    return services.refresh_all_snapshots(app, state.task_engine_factory)


def log_in(client, form=LOGIN):
    return client.post("/status/login", data=form)


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_without_a_session_the_page_is_the_login_form(client):
    response = client.get("/status")

    assert (response.status_code, response.mimetype) == (200, "text/html")
    page = response.get_data(as_text=True)
    assert 'action="/status/login"' in page and 'type="password"' in page
    assert "<script" not in page and "http://" not in page.replace('http://docs', '')  # no external asset


def test_login_sets_a_signed_httponly_strict_cookie_expiring_with_the_token(client, app):
    response = log_in(client)

    assert (response.status_code, response.headers["Location"]) == (303, "/status")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("glancesync_session=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Expires=" in cookie
    assert SERVICE_PASSWORD not in cookie
    expires = re.search(r"Expires=([^;]+)", cookie).group(1)
    expiry = datetime.strptime(expires, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=timezone.utc)
    assert timedelta(minutes=55) < expiry - datetime.now(timezone.utc) <= timedelta(hours=1)  # the fake's token: 1 h


def row_of(page: str, region: str) -> str:
    return page.split(f'<tr data-region="{region}"')[1].split("</tr>")[0]


def counts_of(row: str) -> dict[str, int]:
    """status -> count of a summary row (zeros left out)."""
    return {status: int(n) for status, n in
            re.findall(r'class="count status \w+" data-status="(\w+)"><a href="[^"]+">(\d+)</a>', row)}


def test_the_summary_shows_a_row_per_region_with_its_counts_per_status(client, app):
    assert refresh(app) == 2
    log_in(client)

    page = client.get("/status").get_data(as_text=True)

    assert counts_of(row_of(page, "RegionA")) == {"pending_upload": 2}
    assert counts_of(row_of(page, "RegionB")) == {"ok": 1, "pending_upload": 1}
    assert '<th scope="row"><a href="/status/regions/RegionB">RegionB</a></th>' in page
    assert 'href="/status/regions/RegionB?status=ok">1</a>' in page
    assert "data-image" not in page  # no cell per image
    assert "s ago" in page and page.count("Sync this region") == 2


def test_a_regions_page_shows_its_images_statuses_and_tooltips(client, app):
    refresh(app)
    log_in(client)

    page = client.get("/status/regions/RegionB").get_data(as_text=True)

    assert re.search(r'class="status ok" data-image="base_ubuntu" title="image id b1">ok<', page)
    assert re.search(r'class="status pending" data-image="base_centos" title="not in the region">pending_upload<',
                     page)
    assert "<code>b1</code>" in page and page.count("Sync this region") == 1


@pytest.mark.parametrize("url, shown, hidden", [
    ("/status?status=ok", ['data-region="RegionB"'], ['data-region="RegionA"']),
    ("/status?status=out_of_step", ['data-region="RegionA"', 'data-region="RegionB"'], []),
    ("/status/regions/RegionB?status=ok", ['data-image="base_ubuntu"'], ['data-image="base_centos"']),
    ("/status/regions/RegionB?status=out_of_step", ['data-image="base_centos"'], ['data-image="base_ubuntu"']),
    ("/status/regions/RegionA?status=ok", ['id="no-image"'], ['data-image="base_']),
], ids=["summary ok", "summary out of step", "region ok", "region out of step", "region none"])
def test_the_status_filters_keep_the_regions_or_images_in_that_status(client, app, url, shown, hidden):
    refresh(app)
    log_in(client)

    page = client.get(url).get_data(as_text=True)

    assert all(text in page for text in shown) and not any(text in page for text in hidden)
    assert 'class="filter current"' in page


def test_the_filter_links_count_what_they_keep(client, app):
    refresh(app)
    log_in(client)

    page = client.get("/status").get_data(as_text=True)

    links = dict(re.findall(r'data-filter="(\w+)"[^>]*>[\w ]+ \((\d+)\)<', page))
    assert links == {"all": "2", "out_of_step": "2", "ok": "1", "pending_upload": "2"}


def test_an_unknown_status_filter_or_region_is_one_clear_error(client, app):
    refresh(app)
    log_in(client)

    bad = client.get("/status?status=fine")
    missing = client.get("/status/regions/Atlantis")

    assert bad.status_code == 400
    assert "Unknown status filter &#39;fine&#39;: use out_of_step or one of ok, " in bad.get_data(as_text=True)
    assert missing.status_code == 404
    assert "No status of region Atlantis stored" in missing.get_data(as_text=True)


def test_the_regions_page_needs_a_login(client, app):
    refresh(app)

    assert 'type="password"' in client.get("/status/regions/RegionA").get_data(as_text=True)


def test_sync_button_starts_a_task_and_the_snapshot_follows(client, app):
    refresh(app)
    log_in(client)
    page = client.get("/status").get_data(as_text=True)

    response = client.post("/status/regions/RegionA/sync", data={"csrf_token": csrf_of(page)})

    assert (response.status_code, response.headers["Location"]) == (303, "/status")
    with app.app_context():
        task = db.session.execute(db.select(Task)).scalar_one()
        assert (task.region, task.status, task.requested_by) == ("RegionA", TaskStatus.SYNCED, SERVICE_USER)
        images = db.session.get(RegionSnapshot, "RegionA").images
    assert '"status": "pending_upload"' not in images  # refreshed by the task, before it read finished
    row = row_of(client.get("/status").get_data(as_text=True), "RegionA")
    assert counts_of(row) == {"ok": 2} and "synced" in row
    page = client.get("/status/regions/RegionA").get_data(as_text=True)
    assert page.count('class="status ok"') == 2 and "synced" in page


def test_the_sync_button_of_a_regions_page_leads_back_to_it(client, app):
    refresh(app)
    log_in(client)
    page = client.get("/status/regions/RegionA").get_data(as_text=True)

    response = client.post("/status/regions/RegionA/sync", data={"csrf_token": csrf_of(page), "back": "region"})

    assert (response.status_code, response.headers["Location"]) == (303, "/status/regions/RegionA")


# ------------------------------------------------------------------ a federation: 20 regions x 300 images
@pytest.fixture
def federation(make_app, tmp_path):
    from fiwareglancesync.glancesync import GlanceSync

    environ = seed_mock_store(tmp_path / "federation", federation_seed(regions=20, images=300))
    engine = lambda: GlanceSync.from_environment(environ=environ)  # noqa: E731
    app = make_app(engine_factory=engine)
    assert refresh(app) == 20
    return app, engine()


def test_a_federation_of_20_regions_and_300_images_reads_as_20_rows(federation):
    app, engine = federation
    client = app.test_client()
    log_in(client)

    page = client.get("/status").get_data(as_text=True)

    assert page.count("<tr data-region=") == 20 and "data-image" not in page
    for region in engine.show_regions():  # the counts are those the engine computes
        expected = Counter(entry.status.value for entry in engine.region_status(region))
        assert counts_of(row_of(page, region)) == dict(expected)
    assert len(page) < 60_000  # a page: the former grid of 20 x 300 cells was 772 KB


def test_a_federation_regions_page_lists_its_300_images_and_filters_them(federation):
    app, engine = federation
    client = app.test_client()
    log_in(client)
    expected = Counter(entry.status.value for entry in engine.region_status("Region04"))

    page = client.get("/status/regions/Region04").get_data(as_text=True)
    pending = client.get("/status/regions/Region04?status=pending_upload").get_data(as_text=True)

    assert page.count("<tr data-image=") == 300
    assert pending.count("<tr data-image=") == expected["pending_upload"] > 0
    assert Counter(re.findall(r'<td class="status \w+" data-image="[^"]+" title="[^"]*">(\w+)<', page)) == expected


@pytest.mark.parametrize("form", [{}, {"csrf_token": ""}, {"csrf_token": "forged"}], ids=["none", "empty", "wrong"])
def test_a_sync_without_the_sessions_csrf_token_is_refused(client, app, form):
    log_in(client)

    response = client.post("/status/regions/RegionA/sync", data=form)

    assert response.status_code == 403
    assert "CSRF" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(db.select(Task)).first() is None


def test_a_sync_without_a_session_is_refused(client, app):
    response = client.post("/status/regions/RegionA/sync", data={"csrf_token": "x"})

    assert response.status_code == 401
    with app.app_context():
        assert db.session.execute(db.select(Task)).first() is None


def test_a_user_without_admin_is_refused(client, keystone, monkeypatch):
    token = keystone.issue("qa", ("member", "reader"))
    monkeypatch.setattr(status_page, "keystone_login",
                        lambda config, *args: (token, datetime.now(timezone.utc) + timedelta(hours=1)))

    response = log_in(client, dict(LOGIN, username="qa"))

    assert response.status_code == 401
    assert auth.NOT_ADMIN in response.get_data(as_text=True)
    assert "glancesync_session=" not in response.headers.get("Set-Cookie", "") or \
        "token" not in response.headers.get("Set-Cookie", "")
    assert 'type="password"' in client.get("/status").get_data(as_text=True)


def test_a_wrong_password_is_refused(client):
    response = log_in(client, dict(LOGIN, password="wrong"))

    assert response.status_code == 401
    assert status_page.BAD_LOGIN in response.get_data(as_text=True)


def test_logout_needs_the_csrf_token(client, app):
    refresh(app)
    log_in(client)
    page = client.get("/status").get_data(as_text=True)

    client.post("/status/logout", data={})
    assert "Sync this region" in client.get("/status").get_data(as_text=True)
    client.post("/status/logout", data={"csrf_token": csrf_of(page)})
    assert 'type="password"' in client.get("/status").get_data(as_text=True)


def test_a_running_task_makes_the_page_reload_itself(make_app):
    app = make_app(runner=ManualRunner())
    client = app.test_client()
    refresh(app)
    log_in(client)
    client.post("/status/regions/RegionA/sync", data={"csrf_token": csrf_of(client.get("/status").get_data(as_text=True))})

    page = client.get("/status").get_data(as_text=True)

    assert '<meta http-equiv="refresh" content="3">' in page
    assert "Syncing&hellip;" in page


def test_a_region_that_cannot_be_listed_shows_its_error(make_app, real_engine):
    from fiwareglancesync.glancesync.errors import RegionError

    class Broken:
        def __init__(self):
            self.real = real_engine()

        def show_regions(self):
            return self.real.show_regions()

        def region_status(self, region):
            if region == "RegionB":
                raise RegionError("RegionB: Error retrieving image list. Cause: HTTP 500", region)
            return self.real.region_status(region)

    app = make_app(engine_factory=Broken)
    client = app.test_client()
    assert refresh(app) == 1
    log_in(client)

    page = client.get("/status").get_data(as_text=True)

    assert "not listed: RegionB: Error retrieving image list. Cause: HTTP 500" in page


def test_the_scheduler_refreshes_only_when_the_snapshots_are_old(make_app):
    app = make_app(STATUS_REFRESH=300)
    scheduler = app.extensions["glancesync"].snapshots
    assert scheduler.due()  # no snapshot yet
    refresh(app)
    assert not scheduler.due()
    with app.app_context():
        db.session.execute(db.update(RegionSnapshot).values(taken_at=datetime(2000, 1, 1)))
        db.session.commit()
    assert scheduler.due()


@pytest.mark.parametrize("free, old, refreshed", [
    (False, True, False),  # another instance holds the refresh
    (True, True, True),
    (True, False, False),  # another instance refreshed just before this one took the lock
], ids=["lock held elsewhere", "lock taken, due", "lock taken, refreshed meanwhile"])
def test_the_scheduler_refreshes_only_under_its_lock_and_when_still_due(make_app, monkeypatch, free, old,
                                                                        refreshed):
    from contextlib import contextmanager

    from fiwareglancesync.app.loops import SnapshotScheduler

    app = make_app()
    if not old:
        refresh(app)
    asked, calls = [], []

    @contextmanager
    def exclusive(job):
        asked.append(job)
        yield free

    monkeypatch.setattr(services, "refresh_all_snapshots", lambda app, factory: calls.append(factory) or 0)
    state = app.extensions["glancesync"]
    scheduler = SnapshotScheduler(app, state.runner, state.task_engine_factory, 300, exclusive)

    scheduler._refresh()

    assert asked == ["status-refresh"]
    assert calls == ([state.task_engine_factory] if refreshed else [])


def test_static_stylesheet_is_served(client):
    with client.get("/static/status.css") as response:
        assert (response.status_code, response.mimetype) == (200, "text/css")
        assert b"td.status.ok" in response.get_data()


def test_an_engine_error_on_the_sync_form_answers_the_html_error_page(make_app):
    from fiwareglancesync.glancesync.errors import ConfigError

    class Unconfigured:
        def show_regions(self):
            raise ConfigError("no master region")

    app = make_app(engine_factory=Unconfigured)
    client = app.test_client()
    log_in(client)
    page = client.get("/status").get_data(as_text=True)

    response = client.post("/status/regions/RegionA/sync", data={"csrf_token": csrf_of(page)})

    assert (response.status_code, response.mimetype) == (500, "text/html")
    assert "Error 500: Configuration error: no master region" in response.get_data(as_text=True)


def test_a_regions_page_shows_the_image_cache_when_its_target_precaches(client, app):
    refresh(app)
    log_in(client)
    assert "Image cache" not in client.get("/status/regions/RegionB").get_data(as_text=True)  # no precache
    with app.app_context():
        snapshot = db.session.get(RegionSnapshot, "RegionB")
        images = json.loads(snapshot.images)
        for image in images:
            image["cache"] = "cached" if image["id"] else None
        snapshot.images = json.dumps(images)
        db.session.commit()

    page = client.get("/status/regions/RegionB").get_data(as_text=True)

    assert "<th scope=\"col\">Image cache</th>" in page
    cells = dict(re.findall(r'<td class="cache" data-image="([^"]+)">([^<]+)</td>', page))
    assert sorted(cells.values()) == ["&ndash;", "cached"]
