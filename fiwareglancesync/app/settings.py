"""Where the REST service finds its settings, checked when the server starts (never at import).

In the original's order, with its error texts (:data:`SETTINGS_FILE_MISSING` and friends):

1. ``fiware-glancesync.cfg``: ``GLANCESYNC_SETTINGS_FILE``, else
   ``/etc/fiware.d/fiware-glancesync.cfg``; it must exist.  Keys keep the original's sections
   and names (``[openstack] KEYSTONE_URL``, ``ADM_USER`` ...); absent keys take the defaults of
   :data:`SETTINGS`; credentials left empty fall back to the ``OS_*`` environment.
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
from ..glancesync.config_file import bounded_number
from ..glancesync.errors import one_line
from . import session_key

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

# What an empty (or absent) value of a key means.
KEPT = "kept"            # the empty text
DEFAULT = "default"      # the key's default
ENVIRONMENT = "env"      # the first of its environment variables that is set, else the empty text
REQUIRED = "required"    # the first of its environment variables that is set, else an error


@dataclass(frozen=True)
class Setting:
    """One row of :data:`SETTINGS`: a key of fiware-glancesync.cfg (``section``/``key``; empty: a
    Flask key no file key sets), the :class:`ServiceSettings` attribute it becomes (``name``;
    empty: none), the Flask key it sets (``flask_key``; empty: none), its default, its type
    (``str``, ``int`` or ``float``; numbers have a ``minimum``) and, for text, what an empty
    value means (``empty``, with the environment variables ``env``)."""

    section: str
    key: str
    name: str
    flask_key: str
    default: Any
    kind: type = str
    minimum: float = 0
    empty: str = KEPT
    env: tuple[str, ...] = ()


def _flask_only(flask_key: str, default: Any) -> Setting:
    return Setting("", "", "", flask_key, default)


# The service's settings in one table: what fiware-glancesync.cfg may say (in the original's
# sections and names), the attributes of ServiceSettings, and the Flask configuration create_app
# starts from (DEFAULT_CONFIG).  Keys of the original not listed here ([http] ...,
# SETTINGS_TYPE, REGION_LIST_API_V3) are accepted and ignored.
SETTINGS: tuple[Setting, ...] = (
    Setting("", "", "database_uri", "SQLALCHEMY_DATABASE_URI", "sqlite://"),  # see _database_uri
    Setting("database", "URL", "database_url", "", ""),
    # KEYSTONE_URL with AUTH_API_V3/V2 and KEYSTONE_API_VERSION give the versioned URL (_keystone)
    Setting("openstack", "KEYSTONE_URL", "keystone_auth_url", "KEYSTONE_AUTH_URL", "", empty=REQUIRED,
            env=("OS_AUTH_URL",)),
    Setting("openstack", "KEYSTONE_API_VERSION", "keystone_api_version", "KEYSTONE_API_VERSION", keystone.V3),
    Setting("openstack", "AUTH_API_V3", "auth_api_v3", "", ""),  # empty: v3
    Setting("openstack", "AUTH_API_V2", "auth_api_v2", "", ""),  # empty: v2.0
    Setting("openstack", "ADM_USER", "admin_user", "KEYSTONE_ADMIN_USER", "", empty=REQUIRED, env=("OS_USERNAME",)),
    Setting("openstack", "ADM_PASS", "admin_password", "KEYSTONE_ADMIN_PASSWORD", "", empty=REQUIRED,
            env=("OS_PASSWORD",)),
    Setting("openstack", "ADM_TENANT_NAME", "admin_project", "KEYSTONE_ADMIN_PROJECT", "", empty=ENVIRONMENT,
            env=("OS_PROJECT_NAME", "OS_TENANT_NAME")),
    Setting("openstack", "ADM_TENANT_ID", "admin_project_id", "KEYSTONE_ADMIN_PROJECT_ID", ""),
    Setting("openstack", "USER_DOMAIN_NAME", "user_domain_name", "KEYSTONE_USER_DOMAIN_NAME",
            keystone.DEFAULT_DOMAIN, empty=DEFAULT),
    Setting("openstack", "PROJECT_DOMAIN_NAME", "project_domain_name", "KEYSTONE_PROJECT_DOMAIN_NAME",
            keystone.DEFAULT_DOMAIN, empty=DEFAULT),
    Setting("openstack", "CA_FILE", "keystone_ca_file", "KEYSTONE_CA_FILE", ""),
    Setting("openstack", "KEYSTONE_TIMEOUT", "keystone_timeout", "KEYSTONE_TIMEOUT", 10, float, minimum=1),
    Setting("openstack", "TOKEN_CACHE_SECONDS", "token_cache_seconds", "TOKEN_CACHE_SECONDS", 300, int, minimum=0),
    Setting("glancesync", "OWNER", "info_owner", "INFO_OWNER", "FIWARE"),
    Setting("glancesync", "VERSION", "info_version", "INFO_VERSION", __version__, empty=DEFAULT),
    Setting("glancesync", "STATUS", "info_status", "INFO_STATUS", "SUPPORTED"),
    Setting("glancesync", "UPDATED", "info_updated", "INFO_UPDATED", ""),
    Setting("glancesync", "API_INFO_URL", "info_href", "INFO_HREF", "http://docs.glancesync.apiary.io/#"),
    Setting("glancesync", "HOST", "host", "", "0.0.0.0", empty=DEFAULT),
    Setting("glancesync", "PORT", "port", "", 8080, int, minimum=1),
    Setting("glancesync", "TASK_WORKERS", "task_workers", "TASK_WORKERS", 2, int, minimum=1),
    # seconds a request waits for Keystone and Glance (below gunicorn's TIMEOUT)
    Setting("glancesync", "REQUEST_TIMEOUT", "request_timeout", "REQUEST_TIMEOUT", 30, int, minimum=1),
    # seconds between background refreshes of the status snapshots; 0: none
    Setting("glancesync", "STATUS_REFRESH", "status_refresh", "STATUS_REFRESH", 300, int, minimum=0),
    # tooz URL of the per-region locks; empty: glancesync.conf's coordination_url (README "Running on several hosts")
    Setting("glancesync", "COORDINATION_URL", "coordination_url", "COORDINATION_URL", ""),
    # seconds without a heartbeat after which a task's instance is held dead and the task failed
    Setting("glancesync", "TASK_LEASE", "task_lease", "TASK_LEASE", 60, int, minimum=3),
    Setting("gunicorn", "WORKERS", "gunicorn_workers", "", 4, int, minimum=1),
    Setting("gunicorn", "THREADS", "gunicorn_threads", "", 8, int, minimum=1),
    Setting("gunicorn", "PIDFILE", "gunicorn_pidfile", "", ""),
    Setting("gunicorn", "LOGLEVEL", "gunicorn_loglevel", "", "info", empty=DEFAULT),
    Setting("gunicorn", "TIMEOUT", "gunicorn_timeout", "", 60, int, minimum=1),
    _flask_only("TOKEN_VALIDATOR", None),         # tests: an object with validate(token) instead of Keystone
    _flask_only("ENGINE_FACTORY", None),          # a callable returning the engine; None: GlanceSync.from_environment
    _flask_only("TASK_HEARTBEAT_SECONDS", None),  # seconds between heartbeats; None: TASK_LEASE / 3; 0: none
    _flask_only("RECOVER_TASKS_AT_START", True),
    _flask_only("REGIONS_TTL", 60),               # seconds a process trusts its list of region names
    _flask_only("METRICS_ENABLED", True),         # GET /metrics (Prometheus); False: 404
    _flask_only("SESSION_COOKIE_NAME", "glancesync_session"),
    _flask_only("SESSION_COOKIE_HTTPONLY", True),
    _flask_only("SESSION_COOKIE_SAMESITE", "Strict"),
    _flask_only("SESSION_COOKIE_SECURE", False),  # True when the service is served over https only
)

# The Flask configuration create_app starts from.
DEFAULT_CONFIG: Mapping[str, Any] = {s.flask_key: s.default for s in SETTINGS if s.flask_key}
# (section, key) of fiware-glancesync.cfg -> the Flask key it sets.
CFG_FLASK_KEYS: Mapping[tuple[str, str], str] = {(s.section, s.key): s.flask_key
                                                 for s in SETTINGS if s.key and s.flask_key}
# The attributes never shown by repr().
SECRET_NAMES = ("admin_password", "secret_key", "coordination_url")  # a tooz URL may carry a password

# A request answers within REQUEST_TIMEOUT plus what the service itself takes; gunicorn's worker
# timeout must leave at least this much room above it.
REQUEST_TIMEOUT_MARGIN = 5


class SettingsError(Exception):
    """The service cannot start with these settings; ``str(exc)`` is the text to print."""


@dataclass(frozen=True)
class ServiceSettings:
    """Everything the server needs besides glancesync.conf, resolved and validated: the two
    files, one attribute per named row of :data:`SETTINGS` (``settings.port`` ...) and
    ``secret_key`` (see :mod:`.session_key`; "" when none is configured), all in ``values``."""

    settings_file: str
    logging_file: str
    values: Mapping[str, Any]
    extra_config: Mapping[str, Any] = field(default_factory=dict)  # the GLANCESYNCAPP_CONFIG file's keys

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        raise AttributeError(name)

    def __repr__(self) -> str:
        shown = [f"settings_file={self.settings_file!r}", f"logging_file={self.logging_file!r}"]
        shown += [f"{name}={value!r}" for name, value in self.values.items() if name not in SECRET_NAMES]
        return f"ServiceSettings({', '.join(shown)})"

    def flask_config(self) -> dict[str, Any]:
        """The Flask configuration :func:`fiwareglancesync.app.create_app` expects."""
        config = dict(self.extra_config)
        config.update({s.flask_key: self.values[s.name] for s in SETTINGS if s.name and s.flask_key})
        if self.secret_key:
            config["SECRET_KEY"] = self.secret_key
        return config


def load_settings(environ: Mapping[str, str] | None = None) -> ServiceSettings:
    """Resolve and check every setting (see the module docstring); raises SettingsError."""
    environ = os.environ if environ is None else environ
    settings_file = _existing_file(environ.get("GLANCESYNC_SETTINGS_FILE") or DEFAULT_SETTINGS_FILE,
                                   SETTINGS_FILE_MISSING)
    reader = _Reader(settings_file, _read_cfg(settings_file), environ)
    logging_file = _existing_file(environ.get("GLANCESYNC_LOGGING_SETTINGS_FILE") or DEFAULT_LOGGING_FILE,
                                  LOGGING_FILE_MISSING)
    extra_config = _read_app_config(environ)
    database_uri = _database_uri(environ, reader.named("database_url"), extra_config)
    version, auth_url = _keystone(reader)
    _check_request_timeout(reader)
    values = {s.name: reader.value(s) for s in SETTINGS if s.key}
    values.update(database_uri=database_uri, keystone_api_version=version, keystone_auth_url=auth_url)
    try:
        values["secret_key"] = session_key.configured_key(environ, extra_config)
    except session_key.SessionKeyError as exc:
        raise SettingsError(str(exc)) from None
    return ServiceSettings(settings_file, logging_file, values, extra_config)


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
    values = {}
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


def _database_uri(environ: Mapping[str, str], cfg_url: str, extra_config: Mapping[str, Any]) -> str:
    for candidate in (environ.get("SQLALCHEMY_DATABASE_URI"), environ.get("DATABASE_URL"), cfg_url,
                      extra_config.get("SQLALCHEMY_DATABASE_URI")):
        if candidate:
            return normalise_database_uri(str(candidate))
    directory = environ.get("GLANCESYNCAPP_DATABASE_PATH")
    if not directory:
        raise SettingsError(DATABASE_PATH_MISSING)
    if not os.path.isdir(directory):
        raise SettingsError(f"GLANCESYNCAPP_DATABASE_PATH names {directory}, which is not a directory")
    return "sqlite:///" + os.path.join(os.path.abspath(directory), DATABASE_FILE_NAME)


class _Reader:
    """The typed values of the rows of SETTINGS, with errors naming the file, section and key."""

    def __init__(self, path: str, values: Mapping[tuple[str, str], str], environ: Mapping[str, str]):
        self.path = path
        self.values = values
        self.environ = environ

    def named(self, name: str) -> Any:
        return self.value(_BY_NAME[name])

    def value(self, setting: Setting) -> Any:
        """The row's value: the file's text (its default when absent) as the row's type; an
        empty text as the row's ``empty`` says."""
        raw = self.values.get((setting.section, setting.key), str(setting.default))
        if setting.kind is not str:
            return bounded_number(
                raw, setting.kind, setting.minimum,
                lambda reason: SettingsError(f"{self.path}: [{setting.section}] {setting.key} = {reason}"),
                "{text!r} is not a number", "{text!r} must be at least {minimum}")
        if raw or setting.empty == KEPT:
            return raw
        if setting.empty == DEFAULT:
            return str(setting.default)
        found = next((self.environ[v] for v in setting.env if self.environ.get(v)), "")
        if not found and setting.empty == REQUIRED:
            raise SettingsError(f"{self.path}: [{setting.section}] {setting.key} is empty and "
                                f"{' or '.join(setting.env)} is not set; the service needs it to validate tokens")
        return found


_BY_NAME = {s.name: s for s in SETTINGS if s.name}


def _check_request_timeout(reader: _Reader) -> None:
    request_timeout, gunicorn_timeout = reader.named("request_timeout"), reader.named("gunicorn_timeout")
    if request_timeout + REQUEST_TIMEOUT_MARGIN > gunicorn_timeout:
        raise SettingsError(f"{reader.path}: [glancesync] REQUEST_TIMEOUT = {request_timeout} must be at least "
                            f"{REQUEST_TIMEOUT_MARGIN} s below [gunicorn] TIMEOUT = {gunicorn_timeout} (gunicorn "
                            "kills a worker whose request takes longer)")


def _keystone(reader: _Reader) -> tuple[str, str]:
    """(API version, versioned auth URL) of the service credential (:func:`keystone.resolve`, with
    AUTH_API_V3/AUTH_API_V2 as the versions' paths)."""
    url = reader.named("keystone_auth_url")
    requested = reader.named("keystone_api_version")
    paths = {keystone.V3: reader.named("auth_api_v3"), keystone.V2: reader.named("auth_api_v2")}
    try:
        return keystone.resolve(url, requested, paths)
    except ValueError:
        raise SettingsError(f"{reader.path}: [openstack] KEYSTONE_API_VERSION = {requested!r}: use 3 or 2.0") from None
