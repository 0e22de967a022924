"""The REST service: ``create_app`` builds it; importing this package builds nothing.

``create_app(config)`` takes the Flask configuration as a mapping (tests pass their own; ``None``
reads the server settings with :func:`settings.load_settings`); keys it leaves out take the
defaults of :data:`settings.DEFAULT_CONFIG`, the service's one table of defaults.  Its
collaborators can be injected: ``engine_factory()`` returns the sync engine, for requests and
tasks alike (default: a per-process :class:`~.engines.EnginePool`, which reads glancesync.conf
exactly as the CLI does and gives requests engines over facades kept per process and bounded by
``REQUEST_TIMEOUT``, tasks engines of their own) and
``runner`` runs tasks (default: a :class:`~.runner.ThreadPoolRunner` of ``TASK_WORKERS``).
A configuration file (``GLANCESYNCAPP_CONFIG``) may also set ``ENGINE_FACTORY`` to a callable.
What the views use is the app's :class:`~.state.ServiceState`.  Importing this package
imports only the settings; ``create_app`` imports the rest.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from flask import Flask

from .settings import DEFAULT_CONFIG

if TYPE_CHECKING:
    from .runner import TaskRunner
    from .engine_protocol import Engine, EngineFactory

__all__ = ["DEFAULT_CONFIG", "MIGRATIONS_DIR", "create_app", "default_engine_factory", "recover_tasks", "preload"]

MIGRATIONS_DIR = str(Path(__file__).parent / "migrations")


def default_engine_factory() -> Engine:
    """The engine the CLI would build: glancesync.conf from GLANCESYNC_CONFIG etc."""
    from ..glancesync import GlanceSync

    return GlanceSync.from_environment()


def create_app(config: Mapping[str, Any] | None = None, *, engine_factory: EngineFactory | None = None,
               runner: TaskRunner | None = None) -> Flask:
    """Build the service.  Raises settings.SettingsError when ``config`` is None and the
    server settings are unusable."""
    from . import api, status_page
    from .extensions import db, migrate
    from .state import build_state

    if config is None:
        from .settings import load_settings

        config = load_settings().flask_config()
    app = Flask(__name__)
    app.config.from_mapping(DEFAULT_CONFIG)
    app.config.update(config)
    app.json.sort_keys = False  # keep the documented key order of the responses
    if not app.config.get("SECRET_KEY"):
        from .session_key import new_key

        # This process's own key (tests, runserver): the servers configure one (session_key.py).
        app.config["SECRET_KEY"] = new_key()

    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR, render_as_batch=True)
    state = build_state(app, engine_factory or app.config["ENGINE_FACTORY"], runner)
    app.extensions["glancesync"] = state
    api.register(app)
    status_page.register(app)
    if app.config["RECOVER_TASKS_AT_START"]:
        state.recover_tasks()
    return app


def preload() -> None:
    """Import every module an app needs (a gunicorn master does, so that its forked workers
    share them instead of each importing them while it boots)."""
    from . import api, bounded, engines, loops, state, status_page  # noqa: F401
    from .api import errors, info, monitoring, regions, tasks  # noqa: F401


def recover_tasks(app: Flask) -> int:
    """Mark failed the tasks whose process died (see services); 0 if the database is not ready."""
    return app.extensions["glancesync"].recover_tasks()
