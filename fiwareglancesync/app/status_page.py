"""``GET /status``: the HTML status page (README "The status page").

Server-rendered (Jinja templates ``templates/*.html``, one stylesheet ``static/status.css``; no
JavaScript, no external asset).  ``/status``: one row per region (images per sync status, the age
of its snapshot, its last task, a "Sync this region" button); ``/status/regions/<region>``: that
region's images (status, region image id or error).  Both take ``?status=`` (a sync status or
``out_of_step``) to keep only the regions or images in it (status_view.py shapes the data).  The
data are the status snapshots (``region_snapshot`` table) that the task pool refreshes in the
background (``STATUS_REFRESH``) and after each task; a page view reads only the database, so every
worker (and host) sharing it shows the same page.  While a shown region has a task ``syncing``
the page reloads itself every few seconds (``<meta http-equiv="refresh">``).

Access, as for the API: a Keystone token with the ``admin`` role.  The login form sends a user
name, password, project and domain; the service asks Keystone (``KEYSTONE_AUTH_URL``) for a
project-scoped token, checks it like an ``X-Auth-Token`` (admin role) and keeps it in Flask's
session cookie: signed with ``SECRET_KEY`` (itsdangerous), ``HttpOnly``, ``SameSite=Strict``,
``Secure`` when ``SESSION_COOKIE_SECURE``, expiring with the token.  Each view checks the kept
token again (cached like any token: a revoked token stops working within TOKEN_CACHE_SECONDS).
The password is never kept.  Every POST form carries the session's random CSRF token; a POST
without it (or with another) is refused with 403.
"""

from __future__ import annotations

import functools
import hmac
import logging
import secrets
from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, Flask, current_app, redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface

from . import services, status_view
from .api.errors import TRANSLATED, translate
from .auth import REFUSED, Authenticator, TokenInfo, aware, keystone_outcomes
from .bounded import call_bounded
from .errors import ApiError
from .models import utcnow

LOG = logging.getLogger("glancesync.app.status")

bp = Blueprint("status", __name__)

SYNCING_REFRESH_SECONDS = 3
BAD_LOGIN = "Keystone refused this user name, password or project"


class TokenSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session, whose cookie expires with the Keystone token it holds."""

    def get_expiration_time(self, app, session_) -> datetime | None:
        expires = session_.get("expires")
        if expires:
            return datetime.fromtimestamp(float(expires), timezone.utc)
        return None


def register(app: Flask) -> None:
    app.session_interface = TokenSessionInterface()
    app.register_blueprint(bp)

    @app.before_request
    def _start_background_refresh() -> None:
        app.extensions["glancesync"].start_loops()


# ------------------------------------------------------------------ Keystone login
def keystone_login(config, username: str, password: str, project: str, domain: str) -> tuple[str, datetime]:
    """A project-scoped token for the user from the Keystone of the app ``config``, and its
    expiry: (token, aware datetime).  (Runs in a bounded call's thread: no app context.)

    :raise ApiError: 401 refused, 503 Keystone not reachable, 502 another Keystone failure.
    """
    from ..glancesync import keystone

    plugin = keystone.password_plugin(auth_url=config["KEYSTONE_AUTH_URL"], version=config["KEYSTONE_API_VERSION"],
                                      username=username, password=password, project_name=project or None,
                                      user_domain_name=domain or keystone.DEFAULT_DOMAIN,
                                      project_domain_name=domain or keystone.DEFAULT_DOMAIN)
    ks_session = keystone.session(plugin, timeout=config["KEYSTONE_TIMEOUT"],
                                  verify=config["KEYSTONE_CA_FILE"] or True, app_name="glancesync-status")
    with keystone_outcomes("Keystone", "failed the login", refused=REFUSED, refusal=lambda: ApiError(401, BAD_LOGIN)):
        access = plugin.get_access(ks_session)
    return access.auth_token, aware(access.expires)


def _authenticator() -> Authenticator:
    return current_app.extensions["glancesync"].authenticator


def _check(token: str) -> TokenInfo:
    return _authenticator().authenticate(token, lambda call: call_bounded("validating the token with Keystone", call))


def _logged_in() -> TokenInfo | None:
    """The session's token info, or None (the session is cleared when its token no longer works)."""
    token = session.get("token")
    if not token:
        return None
    if float(session.get("expires", 0)) <= datetime.now(timezone.utc).timestamp():
        session.clear()
        return None
    try:
        return _check(token)
    except ApiError as exc:
        if exc.code == 401:
            session.clear()
            return None
        raise


def _csrf_ok() -> bool:
    expected = session.get("csrf")
    given = request.form.get("csrf_token", "")
    return bool(expected) and hmac.compare_digest(str(expected), given)


def _login_page(message: str | None, status: int, **values: Any):
    return render_template("login.html", message=message, values=values), status


def _html_errors(view):
    """An error the service translates (token check, domain, engine or database error) during a
    page view: an HTML page saying so, with the status and message the API would give (the JSON
    envelope is the API's)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except TRANSLATED as exc:
            code, message = translate(exc)
            return render_template("error.html", code=code, message=message), code

    return wrapper


# ------------------------------------------------------------------ views
@bp.get("/status")
@_html_errors
def status_page():
    info = _logged_in()
    if info is None:
        return _login_page(None, 200)
    wanted = status_view.check_filter(request.args.get("status"))
    page = status_view.summary(services.status_page_rows(), utcnow(), wanted)
    return render_template("status.html", **page, **_common(info, page["any_syncing"]))


@bp.get("/status/regions/<region>")
@_html_errors
def region_page(region: str):
    info = _logged_in()
    if info is None:
        return _login_page(None, 200)
    wanted = status_view.check_filter(request.args.get("status"))
    rows = services.status_page_rows(region)
    if not rows:
        raise ApiError(404, f"No status of region {region} stored (not a region of glancesync.conf, "
                            "or its first refresh is under way)")
    page = status_view.region_detail(rows[0], utcnow(), wanted)
    return render_template("region.html", **page, **_common(info, page["region"]["syncing"]))


def _common(info: TokenInfo, syncing: bool) -> dict[str, Any]:
    return {"user": info.user, "csrf": session.get("csrf", ""),
            "refresh": SYNCING_REFRESH_SECONDS if syncing else None,
            "status_refresh": current_app.config["STATUS_REFRESH"]}


@bp.post("/status/login")
@_html_errors
def login():
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    project = request.form.get("project", "").strip()
    domain = request.form.get("domain", "").strip() or "Default"
    values = {"username": username, "project": project, "domain": domain}
    if not username or not password:
        return _login_page("User name and password are needed", 400, **values)
    try:
        token, expires = call_bounded("logging in to Keystone",
                                      functools.partial(keystone_login, dict(current_app.config), username, password,
                                                        project, domain))
        info = _check(token)
    except ApiError as exc:
        LOG.info("status page login of %s refused: %s", username, exc.message)
        return _login_page(exc.message, exc.code if exc.code != 401 else 401, **values)
    session.clear()
    session["token"] = token
    session["expires"] = expires.timestamp()
    session["user"] = info.user
    session["csrf"] = secrets.token_urlsafe(32)
    session.permanent = True
    LOG.info("status page login of %s (project %s)", info.user, info.project)
    return redirect(url_for("status.status_page"), code=303)


@bp.post("/status/logout")
def logout():
    if _csrf_ok():
        session.clear()
    return redirect(url_for("status.status_page"), code=303)


@bp.post("/status/regions/<region>/sync")
@_html_errors
def sync_region(region: str):
    info = _logged_in()
    if info is None:
        return _login_page("Please log in again", 401)
    if not _csrf_ok():
        LOG.warning("status page: sync of %s refused: missing or wrong CSRF token", region)
        return render_template("error.html", code=403, message="Refused: the form's CSRF token is missing or "
                                                               "wrong (reload the page and try again)"), 403
    task, created = current_app.extensions["glancesync"].start_sync(region, info.user)
    LOG.info("status page: %s sync of %s (task %s)", "started" if created else "already running", region, task.id)
    if request.form.get("back") == "region":  # the button of the region's own page
        return redirect(url_for("status.region_page", region=region), code=303)
    return redirect(url_for("status.status_page"), code=303)
