"""Fixtures of the REST service tests: an app on a fresh SQLite database (migrated), the real
engine on a file-backed mock cloud, Keystone mocked at the HTTP level, an immediate runner."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Callable

import logging
import shutil

import flask_migrate
import pytest

from fiwareglancesync.app import create_app
from fiwareglancesync.app.extensions import db
from fiwareglancesync.app.runner import ImmediateRunner
from fiwareglancesync.glancesync import GlanceSync

from .fake_keystone import SERVICE_PASSWORD, SERVICE_PROJECT, SERVICE_USER, FakeKeystone, mount
from .mock_cloud import seed_mock_store

KEYSTONE_URL = "http://keystone.test:5000"


class ManualRunner:
    """Keeps submitted tasks until the test runs them: a task stays ``syncing`` meanwhile."""

    def __init__(self) -> None:
        self.pending: deque[Callable[[], None]] = deque()

    def submit(self, work: Callable[[], None]) -> None:
        self.pending.append(work)

    def run_all(self) -> int:
        count = 0
        while self.pending:
            self.pending.popleft()()
            count += 1
        return count


@pytest.fixture(autouse=True)
def glancesync_logs_reach_caplog():
    """The "glancesync" parent logger as a fresh process has it (propagating, no level, no
    handler) for each test: a CLI run in this process (tests/cli) configures it for its stderr."""
    logger = logging.getLogger("glancesync")
    handlers, level, propagate = logger.handlers[:], logger.level, logger.propagate
    logger.handlers[:], logger.propagate = [], True
    logger.setLevel(logging.NOTSET)  # (setLevel, not .level: it also clears the loggers' level caches)
    yield
    logger.handlers[:], logger.propagate = handlers, propagate
    logger.setLevel(level)


@pytest.fixture
def keystone(requests_mock) -> FakeKeystone:
    """Keystone v3 and v2.0 at KEYSTONE_URL, answered by a FakeKeystone through requests-mock."""
    return mount(requests_mock, FakeKeystone(), KEYSTONE_URL)


@pytest.fixture
def engine_env(tmp_path: Path) -> dict[str, str]:
    """GLANCESYNC_MOCKPERSISTENT_PATH + GLANCESYNC_CONFIG of a freshly seeded mock cloud."""
    return seed_mock_store(tmp_path / "cloud")


@pytest.fixture
def real_engine(engine_env) -> Callable[[], GlanceSync]:
    """The engine factory the service uses, reading this test's environment instead of os.environ."""
    return lambda: GlanceSync.from_environment(environ=engine_env)


def service_config(tmp_path: Path, **overrides) -> dict:
    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'glancesyncapi.db'}",
        "KEYSTONE_AUTH_URL": f"{KEYSTONE_URL}/v3",
        "KEYSTONE_API_VERSION": "3",
        "KEYSTONE_ADMIN_USER": SERVICE_USER,
        "KEYSTONE_ADMIN_PASSWORD": SERVICE_PASSWORD,
        "KEYSTONE_ADMIN_PROJECT": SERVICE_PROJECT,
        "TASK_HEARTBEAT_SECONDS": 0,
        "STATUS_REFRESH": 0,  # no background refresh thread (test_status_page.py calls it)
        # The database is migrated after create_app; tests of the start-up recovery call it.
        "RECOVER_TASKS_AT_START": False,
    }
    config.update(overrides)
    return config


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory) -> Path:
    """A SQLite file migrated to head by ``flask_migrate.upgrade``, once per session: each app
    starts from a copy of it (the migrations themselves are test_migrations' subject)."""
    path = tmp_path_factory.mktemp("migrated") / "glancesyncapi.db"
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "RECOVER_TASKS_AT_START": False},
                     runner=ImmediateRunner())
    with app.app_context():
        flask_migrate.upgrade()
        db.engine.dispose()
    return path


@pytest.fixture
def make_app(tmp_path, keystone, real_engine, migrated_database):
    """Build an app (database migrated to head); keyword arguments override config or collaborators."""

    def build(engine_factory=None, runner=None, migrate=True, **config):
        database = tmp_path / "glancesyncapi.db"
        fresh = migrate and not database.exists()
        if fresh:
            shutil.copyfile(migrated_database, database)
        app = create_app(service_config(tmp_path, **config), engine_factory=engine_factory or real_engine,
                         runner=runner or ImmediateRunner())
        if migrate and not fresh:
            with app.app_context():
                flask_migrate.upgrade()
        return app

    return build


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def admin_token(keystone) -> str:
    return keystone.issue("admin", ("admin", "member"))


@pytest.fixture
def admin_headers(admin_token) -> dict[str, str]:
    return {"X-Auth-Token": admin_token}
