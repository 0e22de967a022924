"""GET /status (README "The status page") in-process: login with a Keystone account with admin, the
page
from the snapshots the background refresh stores, the sync button behind a CSRF token, the
session cookie's attributes.  (The real browser on the real lab: tests/integration/test_status_page_lab.py.)"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from fiwareglancesync.app import auth, services, status_page
from fiwareglancesync.app.extensions import db
from fiwareglancesync.app.models import RegionSnapshot, Task, TaskStatus

from .conftest import ManualRunner
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


def test_the_page_shows_regions_images_statuses_and_tooltips(client, app):
    assert refresh(app) == 2
    log_in(client)

    page = client.get("/status").get_data(as_text=True)

    assert '<tr data-region="RegionA">' in page and '<tr data-region="RegionB">' in page
    assert re.search(r'class="status ok" data-image="base_ubuntu" title="image id b1">ok<', page)
    assert re.search(r'class="status pending" data-image="base_centos" title="not in the region">pending_upload<',
                     page)
    assert "s ago" in page and page.count("Sync this region") == 2


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
    page = client.get("/status").get_data(as_text=True)
    row = page.split('<tr data-region="RegionA">')[1].split("</tr>")[0]
    assert row.count('class="status ok"') == 2 and "synced" in row


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
