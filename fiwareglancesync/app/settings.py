"""Where the REST service finds its settings, checked when the server starts (never at import).

In the original's order, with its error texts (:data:`SETTINGS_FILE_MISSING` and friends):

1. ``fiware-glancesync.cfg``: ``GLANCESYNC_SETTINGS_FILE``, else
   ``/etc/fiware.d/fiware-glancesync.cfg``; it must exist.  Keys keep the original's sections
   and names (``[openstack] KEYSTONE_URL``, ``ADM_USER`` ...); absent keys take the defaults of
   :data:`DEFAULTS`; credentials left empty fall back to the ``OS_*`` environment.
2. The logging file: ``GLANCESYNC_LOGGING_SETTINGS_FILE``, else
   ``/etc/fiware.d/fiware-glancesync-logging.cfg``; it must exist (loaded by
   :func:`configure_logging`, called by the server shells only).
3. ``GLANCESYNCAPP_CONFIG`` (optional here, required by the original): when set it must be an
   absolute path of an existing file whose name contains ``config.py``; it is executed as a
   Flask config file.
4. The database: the first of ``SQLALCHEMY_DATABASE_URI`` and ``DATABASE_URL`` in the
   environment, ``[database] URL`` in fiware-glancesync.cfg, ``SQLALCHEMY_DATABASE_URI`` set by
   the ``GLANCESYNCAPP_CONFIG`` file, else SQLite ``$GLANCESYNCAPP_DATABASE_PATH/glancesyncapi.db``
   (then ``GLANCESYNCAPP_DATABASE_PATH`` is required).

Every problem raises :class:`SettingsError`; the server prints its message and exits 1.
The engine's own configuration (glancesync.conf) is not read here: the engine reads it exactly
as the CLI does.
"""

from __future__ import annotations

import configparser
import logging.config
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

import flask

from .. import __version__
from ..glancesync import keystone
from ..glancesync.errors import one_line

ETC_DIR = "/etc/fiware.d"
DEFAULT_SETTINGS_FILE = os.path.join(ETC_DIR, "fiware-glancesync.cfg")
DEFAULT_LOGGING_FILE = os.path.join(ETC_DIR, "fiware-glancesync-logging.cfg")
DATABASE_FILE_NAME = "glancesyncapi.db"

# The original's texts, to the character: a leading newline, continuation lines indented by
# seven spaces, trailing spaces where the original had them.
SETTINGS_FILE_MISSING = (
    "\nERROR: There is neither defined GLANCESYNC_SETTINGS_FILE environment variable \n"
    "       pointing to fiware-glancesync.cfg nor /etc/fiware.d/etc/fiware-glancesync.cfg \n"
    "       file. Please correct at least one of them to execute the program."
)
LOGGING_FILE_MISSING = (
    "\nERROR: There is neither defined GLANCESYNC_LOGGING_SETTINGS_FILE environment variable pointing\n"
    "       to fiware-glancesync-logging.cfg nor /etc/fiware.d/etc/fiware-glancesync-logging.cfg \n"
    "       file. Please correct at least one of them to execute the program."
)
APP_CONFIG_MISSING = (
    "\nERROR: There is not defined GLANCESYNCAPP_CONFIG environment variable \n"
    "       pointing to config.py path file\n"
    "       Please correct at least one of them to execute the program."
)
DATABASE_PATH_MISSING = (
    "\nERROR: There is not defined GLANCESYNCAPP_DATABASE_PATH environment variable \n"
    "       pointing to database path file\n"
    "       Please correct at least one of them to execute the program."
)

# The service's defaults, in one table: the Flask configuration create_app starts from.  The keys
# of fiware-glancesync.cfg that set a Flask key (CFG_FLASK_KEYS) take their default from here.
DEFAULT_CONFIG: Mapping[str, Any] = {
    "SQLALCHEMY_DATABASE_URI": "sqlite://",
    "KEYSTONE_AUTH_URL": "",
    "KEYSTONE_API_VERSION": keystone.V3,
    "KEYSTONE_ADMIN_USER": "",
    "KEYSTONE_ADMIN_PASSWORD": "",
    "KEYSTONE_ADMIN_PROJECT": "",
    "KEYSTONE_ADMIN_PROJECT_ID": "",
    "KEYSTONE_USER_DOMAIN_NAME": keystone.DEFAULT_DOMAIN,
    "KEYSTONE_PROJECT_DOMAIN_NAME": keystone.DEFAULT_DOMAIN,
    "KEYSTONE_CA_FILE": "",
    "KEYSTONE_TIMEOUT": 10,
    "TOKEN_CACHE_SECONDS": 300,
    "TOKEN_VALIDATOR": None,        # tests: an object with validate(token) instead of Keystone
    "ENGINE_FACTORY": None,         # a callable returning the engine; None: GlanceSync.from_environment
    "INFO_OWNER": "FIWARE",
    "INFO_VERSION": __version__,
    "INFO_STATUS": "SUPPORTED",
    "INFO_UPDATED": "",
    "INFO_HREF": "http://docs.glancesync.apiary.io/#",
    "TASK_WORKERS": 2,
    "TASK_HEARTBEAT_SECONDS": 30,   # how often a process refreshes the heartbeat of its tasks
    "TASK_STALE_SECONDS": 120,      # a task of another host with an older heartbeat is orphaned
    "RECOVER_TASKS_AT_START": True,
    "REGIONS_TTL": 60,              # seconds a process trusts its list of region names
    "REQUEST_TIMEOUT": 30,          # seconds a request waits for Keystone and Glance (below gunicorn's TIMEOUT)
    "METRICS_ENABLED": True,        # GET /metrics (Prometheus); False: 404
    "STATUS_REFRESH": 300,          # seconds between background refreshes of the status snapshots; 0: none
    "SESSION_COOKIE_NAME": "glancesync_session",
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Strict",
    "SESSION_COOKIE_SECURE": False,  # True when the service is served over https only
}

# (section, key) of fiware-glancesync.cfg -> the Flask key it sets (and takes its default from).
CFG_FLASK_KEYS: Mapping[tuple[str, str], str] = {
    ("openstack", "KEYSTONE_URL"): "KEYSTONE_AUTH_URL",
    ("openstack", "KEYSTONE_API_VERSION"): "KEYSTONE_API_VERSION",
    ("openstack", "ADM_USER"): "KEYSTONE_ADMIN_USER",
    ("openstack", "ADM_PASS"): "KEYSTONE_ADMIN_PASSWORD",
    ("openstack", "ADM_TENANT_NAME"): "KEYSTONE_ADMIN_PROJECT",
    ("openstack", "ADM_TENANT_ID"): "KEYSTONE_ADMIN_PROJECT_ID",
    ("openstack", "USER_DOMAIN_NAME"): "KEYSTONE_USER_DOMAIN_NAME",
    ("openstack", "PROJECT_DOMAIN_NAME"): "KEYSTONE_PROJECT_DOMAIN_NAME",
    ("openstack", "CA_FILE"): "KEYSTONE_CA_FILE",
    ("openstack", "KEYSTONE_TIMEOUT"): "KEYSTONE_TIMEOUT",
    ("openstack", "TOKEN_CACHE_SECONDS"): "TOKEN_CACHE_SECONDS",
    ("glancesync", "OWNER"): "INFO_OWNER",
    ("glancesync", "API_INFO_URL"): "INFO_HREF",
    ("glancesync", "VERSION"): "INFO_VERSION",
    ("glancesync", "STATUS"): "INFO_STATUS",
    ("glancesync", "UPDATED"): "INFO_UPDATED",
    ("glancesync", "TASK_WORKERS"): "TASK_WORKERS",
    ("glancesync", "REQUEST_TIMEOUT"): "REQUEST_TIMEOUT",
    ("glancesync", "STATUS_REFRESH"): "STATUS_REFRESH",
}

# A request answers within REQUEST_TIMEOUT plus what the service itself takes; gunicorn's worker
# timeout must leave at least this much room above it.
REQUEST_TIMEOUT_MARGIN = 5

# Keys of the server process itself (no Flask key) and their defaults.
SERVER_DEFAULTS: Mapping[tuple[str, str], str] = {
    ("openstack", "AUTH_API_V3"): "v3",
    ("openstack", "AUTH_API_V2"): "v2.0",
    ("glancesync", "HOST"): "0.0.0.0",
    ("glancesync", "PORT"): "8080",
    ("gunicorn", "WORKERS"): "4",
    ("gunicorn", "THREADS"): "8",
    ("gunicorn", "PIDFILE"): "",
    ("gunicorn", "LOGLEVEL"): "info",
    ("gunicorn", "TIMEOUT"): "60",
    ("database", "URL"): "",
}

# (section, key) -> default, as the text the file would hold.  Keys of the original not listed
# here ([http] ..., SETTINGS_TYPE, REGION_LIST_API_V3) are accepted and ignored.
DEFAULTS: Mapping[tuple[str, str], str] = {
    **{cfg_key: str(DEFAULT_CONFIG[flask_key]) for cfg_key, flask_key in CFG_FLASK_KEYS.items()},
    **SERVER_DEFAULTS,
}

# Service credential key -> environment variables used when the key is empty.
ENV_FALLBACK: Mapping[str, tuple[str, ...]] = {
    "KEYSTONE_URL": ("OS_AUTH_URL",),
    "ADM_USER": ("OS_USERNAME",),
    "ADM_PASS": ("OS_PASSWORD",),
    "ADM_TENANT_NAME": ("OS_PROJECT_NAME", "OS_TENANT_NAME"),
}


class SettingsError(Exception):
    """The service cannot start with these settings; ``str(exc)`` is the text to print."""


@dataclass(frozen=True)
class ServiceSettings:
    """Everything the server needs besides glancesync.conf, resolved and validated."""

    settings_file: str
    logging_file: str
    database_uri: str
    keystone_auth_url: str          # with the version path (…/v3 or …/v2.0)
    keystone_api_version: str       # "3" or "2.0"
    admin_user: str
    admin_password: str = field(repr=False)
    admin_project: str
    admin_project_id: str
    user_domain_name: str
    project_domain_name: str
    keystone_ca_file: str
    keystone_timeout: float
    token_cache_seconds: int
    info_owner: str
    info_version: str
    info_status: str
    info_updated: str
    info_href: str
    host: str
    port: int
    task_workers: int
    request_timeout: int
    status_refresh: int
    secret_key: str = field(repr=False)
    gunicorn_workers: int
    gunicorn_threads: int
    gunicorn_pidfile: str
    gunicorn_loglevel: str
    gunicorn_timeout: int
    extra_config: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def flask_config(self) -> dict[str, Any]:
        """The Flask configuration :func:`fiwareglancesync.app.create_app` expects."""
        config = dict(self.extra_config)
        config.update(
            SQLALCHEMY_DATABASE_URI=self.database_uri,
            KEYSTONE_AUTH_URL=self.keystone_auth_url,
            KEYSTONE_API_VERSION=self.keystone_api_version,
            KEYSTONE_ADMIN_USER=self.admin_user,
            KEYSTONE_ADMIN_PASSWORD=self.admin_password,
            KEYSTONE_ADMIN_PROJECT=self.admin_project,
            KEYSTONE_ADMIN_PROJECT_ID=self.admin_project_id,
            KEYSTONE_USER_DOMAIN_NAME=self.user_domain_name,
            KEYSTONE_PROJECT_DOMAIN_NAME=self.project_domain_name,
            KEYSTONE_CA_FILE=self.keystone_ca_file,
            KEYSTONE_TIMEOUT=self.keystone_timeout,
            TOKEN_CACHE_SECONDS=self.token_cache_seconds,
            INFO_OWNER=self.info_owner,
            INFO_VERSION=self.info_version,
            INFO_STATUS=self.info_status,
            INFO_UPDATED=self.info_updated,
            INFO_HREF=self.info_href,
            TASK_WORKERS=self.task_workers,
            REQUEST_TIMEOUT=self.request_timeout,
            STATUS_REFRESH=self.status_refresh,
        )
        if self.secret_key:
            config["SECRET_KEY"] = self.secret_key
        return config


def load_settings(environ: Mapping[str, str] | None = None) -> ServiceSettings:
    """Resolve and check every setting (see the module docstring); raises SettingsError."""
    environ = os.environ if environ is None else environ
    settings_file = _existing_file(environ.get("GLANCESYNC_SETTINGS_FILE") or DEFAULT_SETTINGS_FILE,
                                   SETTINGS_FILE_MISSING)
    values = _read_cfg(settings_file)
    logging_file = _existing_file(environ.get("GLANCESYNC_LOGGING_SETTINGS_FILE") or DEFAULT_LOGGING_FILE,
                                  LOGGING_FILE_MISSING)
    extra_config = _read_app_config(environ)
    database_uri = _database_uri(environ, values, extra_config)
    reader = _Values(settings_file, values, environ)
    version, auth_url = reader.keystone()
    request_timeout = reader.number("glancesync", "REQUEST_TIMEOUT", int, minimum=1)
    gunicorn_timeout = reader.number("gunicorn", "TIMEOUT", int, minimum=1)
    if request_timeout + REQUEST_TIMEOUT_MARGIN > gunicorn_timeout:
        raise SettingsError(f"{settings_file}: [glancesync] REQUEST_TIMEOUT = {request_timeout} must be at least "
                            f"{REQUEST_TIMEOUT_MARGIN} s below [gunicorn] TIMEOUT = {gunicorn_timeout} (gunicorn "
                            "kills a worker whose request takes longer)")
    return ServiceSettings(
        settings_file=settings_file,
        logging_file=logging_file,
        database_uri=database_uri,
        keystone_auth_url=auth_url,
        keystone_api_version=version,
        admin_user=reader.credential("ADM_USER"),
        admin_password=reader.credential("ADM_PASS"),
        admin_project=reader.text("openstack", "ADM_TENANT_NAME", fallback=True),
        admin_project_id=reader.text("openstack", "ADM_TENANT_ID"),
        user_domain_name=reader.text_or_default("openstack", "USER_DOMAIN_NAME"),
        project_domain_name=reader.text_or_default("openstack", "PROJECT_DOMAIN_NAME"),
        keystone_ca_file=reader.text("openstack", "CA_FILE"),
        keystone_timeout=reader.number("openstack", "KEYSTONE_TIMEOUT", float, minimum=1),
        token_cache_seconds=reader.number("openstack", "TOKEN_CACHE_SECONDS", int, minimum=0),
        info_owner=reader.text("glancesync", "OWNER"),
        info_version=reader.text_or_default("glancesync", "VERSION"),
        info_status=reader.text("glancesync", "STATUS"),
        info_updated=reader.text("glancesync", "UPDATED"),
        info_href=reader.text("glancesync", "API_INFO_URL"),
        host=reader.text_or_default("glancesync", "HOST"),
        port=reader.number("glancesync", "PORT", int, minimum=1),
        task_workers=reader.number("glancesync", "TASK_WORKERS", int, minimum=1),
        request_timeout=request_timeout,
        status_refresh=reader.number("glancesync", "STATUS_REFRESH", int, minimum=0),
        secret_key=_secret_key(environ, extra_config),
        gunicorn_workers=reader.number("gunicorn", "WORKERS", int, minimum=1),
        gunicorn_threads=reader.number("gunicorn", "THREADS", int, minimum=1),
        gunicorn_pidfile=reader.text("gunicorn", "PIDFILE"),
        gunicorn_loglevel=reader.text_or_default("gunicorn", "LOGLEVEL"),
        gunicorn_timeout=gunicorn_timeout,
        extra_config=extra_config,
    )


SECRET_KEY_ENV = "GLANCESYNC_SECRET_KEY"
SECRET_KEY_FILE = "secret_key"


def _secret_key(environ: Mapping[str, str], extra_config: Mapping[str, Any]) -> str:
    """The key that signs the status page's session cookies, the same in every worker: the first
    of ``GLANCESYNC_SECRET_KEY``, ``SECRET_KEY`` of the GLANCESYNCAPP_CONFIG file, the file
    ``$GLANCESYNCAPP_DATABASE_PATH/secret_key`` (created with a random key, mode 0600, when
    missing); else "" (``gunicornserver`` then makes one for the workers of this start)."""
    if environ.get(SECRET_KEY_ENV):
        return environ[SECRET_KEY_ENV]
    if extra_config.get("SECRET_KEY"):
        return str(extra_config["SECRET_KEY"])
    directory = environ.get("GLANCESYNCAPP_DATABASE_PATH")
    if not directory or not os.path.isdir(directory):
        return ""
    path = os.path.join(directory, SECRET_KEY_FILE)
    try:
        import secrets

        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as stream:
            stream.write(secrets.token_hex(32) + "\n")
    except FileExistsError:
        pass
    except OSError as exc:
        raise SettingsError(f"{path}: cannot create the session key: {one_line(exc)}") from None
    try:
        with open(path, encoding="ascii") as stream:
            key = stream.read().strip()
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read the session key: {one_line(exc)}") from None
    if not key:  # another process is writing it this instant
        import time

        time.sleep(0.1)
        with open(path, encoding="ascii") as stream:
            key = stream.read().strip()
    return key


def configure_logging(settings: ServiceSettings) -> None:
    """Load the logging file (``logging.config.fileConfig``); module loggers stay enabled."""
    try:
        logging.config.fileConfig(settings.logging_file, disable_existing_loggers=False)
    except (configparser.Error, KeyError, ValueError, OSError) as exc:
        raise SettingsError(f"{settings.logging_file}: not a usable logging configuration ({exc!r})") from None


def normalise_database_uri(uri: str) -> str:
    """Let ``postgres://`` / ``postgresql://`` URLs use psycopg 3, the driver the service ships with."""
    for prefix in ("postgres://", "postgresql://"):
        if uri.startswith(prefix):
            return "postgresql+psycopg://" + uri[len(prefix):]
    return uri


def _existing_file(path: str, message: str) -> str:
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise SettingsError(message)
    return path


def _read_cfg(path: str) -> dict[tuple[str, str], str]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as stream:
            parser.read_file(stream, source=path)
    except (configparser.Error, OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: cannot be read: {one_line(exc)}") from None
    values = dict(DEFAULTS)
    for section in parser.sections():
        for key, value in parser.items(section):
            values[(section.lower(), key.upper())] = value.strip()
    return values


def _read_app_config(environ: Mapping[str, str]) -> dict[str, Any]:
    path = environ.get("GLANCESYNCAPP_CONFIG")
    if path is None:
        return {}
    if not (path.startswith("/") and "config.py" in path and os.path.isfile(path)):
        raise SettingsError(APP_CONFIG_MISSING)
    config = flask.Config(os.path.dirname(path))
    try:
        config.from_pyfile(path)
    except SystemExit as exc:
        # The original's config.py calls exit(<message>) when its variable is missing.
        message = exc.code if isinstance(exc.code, str) else f"{path} exited with status {exc.code}"
        raise SettingsError(message) from None
    except Exception as exc:  # an operator's Python file: report any failure in one line
        raise SettingsError(f"{path}: cannot be loaded: {exc!r}") from None
    return dict(config)


def _database_uri(environ: Mapping[str, str], values: Mapping[tuple[str, str], str],
                  extra_config: Mapping[str, Any]) -> str:
    for candidate in (environ.get("SQLALCHEMY_DATABASE_URI"), environ.get("DATABASE_URL"),
                      values[("database", "URL")], extra_config.get("SQLALCHEMY_DATABASE_URI")):
        if candidate:
            return normalise_database_uri(str(candidate))
    directory = environ.get("GLANCESYNCAPP_DATABASE_PATH")
    if not directory:
        raise SettingsError(DATABASE_PATH_MISSING)
    if not os.path.isdir(directory):
        raise SettingsError(f"GLANCESYNCAPP_DATABASE_PATH names {directory}, which is not a directory")
    return "sqlite:///" + os.path.join(os.path.abspath(directory), DATABASE_FILE_NAME)


class _Values:
    """Typed access to the cfg values, with errors naming the file, section and key."""

    def __init__(self, path: str, values: Mapping[tuple[str, str], str], environ: Mapping[str, str]):
        self.path = path
        self.values = values
        self.environ = environ

    def text(self, section: str, key: str, fallback: bool = False) -> str:
        value = self.values[(section, key)]
        if not value and fallback:
            value = next((self.environ[v] for v in ENV_FALLBACK[key] if self.environ.get(v)), "")
        return value

    def text_or_default(self, section: str, key: str) -> str:
        """The value, or its default when the file leaves it empty."""
        return self.values[(section, key)] or DEFAULTS[(section, key)]

    def credential(self, key: str) -> str:
        value = self.text("openstack", key, fallback=True)
        if not value:
            names = " or ".join(ENV_FALLBACK[key])
            raise SettingsError(f"{self.path}: [openstack] {key} is empty and {names} is not set; "
                                "the service needs it to validate tokens")
        return value

    def number(self, section: str, key: str, kind: type, minimum: float) -> Any:
        raw = self.values[(section, key)]
        try:
            value = kind(raw)
        except ValueError:
            raise SettingsError(f"{self.path}: [{section}] {key} = {raw!r} is not a number") from None
        if value < minimum:
            raise SettingsError(f"{self.path}: [{section}] {key} = {raw!r} must be at least {minimum}")
        return value

    def keystone(self) -> tuple[str, str]:
        """(API version, versioned auth URL): a version path at the end of the URL wins (the
        configured AUTH_API_V3/AUTH_API_V2 paths as well as /v3 and /v2.0), then
        KEYSTONE_API_VERSION; the version's path is appended to a URL without one."""
        url = self.credential("KEYSTONE_URL").rstrip("/")
        paths = {keystone.V3: self.text_or_default("openstack", "AUTH_API_V3").strip("/") or "v3",
                 keystone.V2: self.text_or_default("openstack", "AUTH_API_V2").strip("/") or "v2.0"}
        for version, path in paths.items():
            if url.endswith("/" + path):
                return version, url
        requested = self.values[("openstack", "KEYSTONE_API_VERSION")]
        try:
            version = keystone.api_version(url, requested)
        except ValueError:
            raise SettingsError(f"{self.path}: [openstack] KEYSTONE_API_VERSION = "
                                f"{requested!r}: use 3 or 2.0") from None
        return version, keystone.versioned_url(url, version, path=paths[version])
