"""The committed migrations: they reach head on an empty database and match the models."""

import logging
import subprocess
from pathlib import Path

import flask_migrate
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from fiwareglancesync.app import MIGRATIONS_DIR
from fiwareglancesync.app.extensions import db

from .processes import bin_path, server_command, write_settings


def head_revision() -> str:
    return ScriptDirectory(MIGRATIONS_DIR).get_current_head()


def model_differences(connection) -> list:
    context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
    return compare_metadata(context, db.metadata)


@pytest.fixture
def server_env(tmp_path):
    environ = write_settings(tmp_path / "etc", "http://keystone:5000")
    environ.update(GLANCESYNCAPP_DATABASE_PATH=str(tmp_path), PATH="/usr/bin:/bin")
    return environ


def test_migrations_are_shipped_in_the_package():
    assert head_revision() == "0002"


def assert_at_head(upgrade, current, database: Path) -> None:
    assert upgrade.returncode == 0, upgrade.stderr
    assert current.returncode == 0, current.stderr
    assert f"{head_revision()} (head)" in current.stdout
    engine = sa.create_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("select version_num from alembic_version").scalar() == head_revision()
    engine.dispose()


def test_glancesync_server_db_upgrade_on_an_empty_sqlite_file_reaches_head(server_env, tmp_path, caplog):
    """``glancesync-server db ...`` through run.main, in this process (test_run runs the console script)."""
    caplog.set_level(logging.INFO, logger="alembic")

    upgrade = server_command(["db", "upgrade"], server_env)
    current = server_command(["db", "current"], server_env)

    assert "Running upgrade  -> 0001" in caplog.text
    assert_at_head(upgrade, current, tmp_path / "glancesyncapi.db")


@pytest.mark.integration  # a real `flask --app` process (the in-process twin above stays in the fast suite)
def test_flask_db_upgrade_on_an_empty_sqlite_file_reaches_head(server_env, tmp_path):
    """``flask --app ... db``: in its own process, since the factory configures logging."""
    executable = [bin_path("flask"), "--app", "fiwareglancesync.run:create_server_app()", "db"]

    upgrade = subprocess.run([*executable, "upgrade"], capture_output=True, text=True, env=server_env, timeout=120)
    current = subprocess.run([*executable, "current"], capture_output=True, text=True, env=server_env, timeout=120)

    assert "Running upgrade  -> 0001" in upgrade.stderr
    assert_at_head(upgrade, current, tmp_path / "glancesyncapi.db")


def test_models_match_the_migrations(make_app):
    app = make_app()

    with app.app_context(), db.engine.connect() as connection:
        assert model_differences(connection) == []


def test_downgrade_to_base_and_upgrade_again(make_app):
    app = make_app()

    with app.app_context():
        flask_migrate.downgrade(revision="base")
        assert "task" not in sa.inspect(db.engine).get_table_names()
        flask_migrate.upgrade()
        assert "task" in sa.inspect(db.engine).get_table_names()
