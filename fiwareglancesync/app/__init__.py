"""The REST service: ``create_app`` builds it; importing this package builds nothing.

``create_app(config)`` takes the Flask configuration as a mapping (tests pass their own; ``None``
reads the server settings with :func:`settings.load_settings`).  Its collaborators can be
injected: ``engine_factory()`` returns the sync engine (default:
``GlanceSync.from_environment()``, which reads glancesync.conf exactly as the CLI does) and
``runner`` runs tasks (default: a :class:`~.runner.ThreadPoolRunner` of ``TASK_WORKERS``).
A configuration file (``GLANCESYNCAPP_CONFIG``) may also set ``ENGINE_FACTORY`` to a callable.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Mapping

from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from .. import __version__

LOG = logging.getLogger(__name__)

MIGRATIONS_DIR = str(Path(__file__).parent / "migrations")

DEFAULT_CONFIG: Mapping[str, Any] = {
    "SQLALCHEMY_DATABASE_URI": "sqlite://",
    "KEYSTONE_API_VERSION": "3",
    "KEYSTONE_TIMEOUT": 10,
    "TOKEN_CACHE_SECONDS": 300,
    "INFO_OWNER": "FIWARE",
    "INFO_VERSION": __version__,
    "INFO_STATUS": "SUPPORTED",
    "INFO_UPDATED": "",
    "INFO_HREF": "http://docs.glancesync.apiary.io/#",
    "TASK_WORKERS": 2,
    "TASK_HEARTBEAT_SECONDS": 30,   # how often a process refreshes the heartbeat of its tasks
    "TASK_STALE_SECONDS": 120,      # a task of another host with an older heartbeat is orphaned
    "RECOVER_TASKS_AT_START": True,
}


@dataclass
class ServiceState:
    """What the views need besides the config: ``app.extensions["glancesync"]``."""

    app: Flask
    engine_factory: Callable[[], Any]
    runner: Any
    authenticator: Any
    heartbeat: Any
    running_from: str = field(default_factory=lambda: str(datetime.now()))

    def run_task(self, task_id: str, region: str) -> None:
        from .services import run_sync_task

        run_sync_task(self.app, self.engine_factory, task_id, region)


def default_engine_factory():
    """The engine the CLI would build: glancesync.conf from GLANCESYNC_CONFIG etc."""
    from ..glancesync import GlanceSync

    return GlanceSync.from_environment()


def create_app(config: Mapping[str, Any] | None = None, *, engine_factory: Callable[[], Any] | None = None,
               runner: Any = None) -> Flask:
    """Build the service.  Raises settings.SettingsError when ``config`` is None and the
    server settings are unusable."""
    from . import api
    from .auth import authenticator_from_config
    from .extensions import db, migrate
    from .runner import ThreadPoolRunner
    from .services import Heartbeat

    if config is None:
        from .settings import load_settings

        config = load_settings().flask_config()
    app = Flask(__name__)
    app.config.from_mapping(DEFAULT_CONFIG)
    app.config.update(config)
    app.json.sort_keys = False  # keep the documented key order of the responses

    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR, render_as_batch=True)
    app.extensions["glancesync"] = ServiceState(
        app=app,
        engine_factory=engine_factory or app.config.get("ENGINE_FACTORY") or default_engine_factory,
        runner=runner if runner is not None else ThreadPoolRunner(app.config["TASK_WORKERS"]),
        authenticator=authenticator_from_config(app.config),
        heartbeat=Heartbeat(app, app.config["TASK_HEARTBEAT_SECONDS"]),
    )
    api.register(app)
    if app.config["RECOVER_TASKS_AT_START"]:
        recover_tasks(app)
    return app


def recover_tasks(app: Flask) -> int:
    """Mark failed the tasks whose process died (see services); 0 if the database is not ready."""
    from .services import fail_orphaned_tasks

    with app.app_context():
        try:
            count = fail_orphaned_tasks()
        except SQLAlchemyError as exc:
            LOG.warning("cannot check for interrupted tasks (has `glancesync-server db upgrade` been run?): %s",
                        str(exc).splitlines()[0])
            return 0
    if count:
        LOG.warning("%d interrupted task(s) marked failed", count)
    return count
