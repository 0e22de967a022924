"""The service as it runs in production: real gunicorn workers (separate processes) on
127.0.0.1, SQLite or PostgreSQL, Keystone on a real HTTP port, the engine on the mock cloud."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from .fake_keystone import KeystoneServer
from .gated_engine_config import Gate
from .mock_cloud import read_store_names, seed_mock_store
from .postgres import POSTGRES_INSTALL_HINT, PostgresServer, postgres_bindir
from .processes import ServiceProcess, bin_path, free_port, gunicorn_service, http, server_command, write_settings

# Real gunicorn, PostgreSQL and Flask-CLI processes: part of the integration run, not the fast suite.
pytestmark = pytest.mark.integration

CONCURRENT_POSTS = 16


@pytest.fixture
def keystone_server():
    with KeystoneServer() as server:
        yield server


@pytest.fixture
def deployment(tmp_path, keystone_server):
    """Environment of a server process: settings, mock cloud, gated engine; database added by tests."""
    gate = Gate(tmp_path / "gated")
    environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **gate.environ()}
    environ.update(write_settings(tmp_path / "etc", keystone_server.url))
    environ.update(seed_mock_store(tmp_path / "cloud"))
    return environ, gate


def migrate(environ: dict[str, str]) -> None:
    """``glancesync-server db upgrade`` (in this process: test_migrations runs the command itself)."""
    result = server_command(["db", "upgrade"], environ)
    assert result.returncode == 0, result.stderr


def wait_for_status(service: ServiceProcess, token: str, task_id: str, wanted: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status, body = http("GET", f"{service.url}/regions/RegionA/tasks/{task_id}", token)
        assert status == 200, body
        if body["status"] == wanted or time.monotonic() > deadline:
            return body
        time.sleep(0.02)


def concurrent_posts(service: ServiceProcess, token: str, count: int = CONCURRENT_POSTS) -> list:
    barrier = threading.Barrier(count)

    def post(_):
        barrier.wait(10)
        return http("POST", f"{service.url}/regions/RegionA", token)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(post, range(count)))


def one_task_from_concurrent_posts(tmp_path, environ, gate, keystone_server):
    """Concurrent POSTs to 2 gunicorn workers give one task, which then syncs the region."""
    token = keystone_server.keystone.issue("admin", ("admin",))
    service = gunicorn_service(tmp_path, environ, workers=2).start()
    try:
        results = concurrent_posts(service, token)
        assert {status for status, _ in results} == {200}, results
        task_ids = {body["taskId"] for _, body in results}
        assert len(task_ids) == 1, f"{len(task_ids)} tasks started for one region: {task_ids}"
        assert len(gate.server_pids()) == 2, "both gunicorn workers should have answered POSTs"
        task_id = task_ids.pop()
        assert wait_for_status(service, token, task_id, "syncing")["status"] == "syncing"

        gate.open()
        body = wait_for_status(service, token, task_id, "synced")

        assert body["status"] == "synced", body
        assert read_store_names(environ["GLANCESYNC_MOCKPERSISTENT_PATH"], "RegionA") == ["base_centos", "base_ubuntu"]
        status, images = http("GET", f"{service.url}/regions/RegionA", token)
        assert status == 200 and {image["status"] for image in images["images"]} == {"ok"}
        assert http("DELETE", f"{service.url}/regions/RegionA/tasks/{task_id}", token) == (200, None)
        assert http("GET", f"{service.url}/regions/RegionA/tasks/{task_id}", token)[0] == 404
        assert "Control socket" not in service.log(), "several servers on a host must not share one socket"
    finally:
        gate.open()  # a failed assertion must not leave a sync waiting (and the stop with it)
        service.stop()
    return task_id


def test_gunicorn_two_workers_start_exactly_one_task_for_concurrent_posts(tmp_path, deployment, keystone_server):
    environ, gate = deployment
    environ["GLANCESYNCAPP_DATABASE_PATH"] = str(tmp_path)
    migrate(environ)

    one_task_from_concurrent_posts(tmp_path, environ, gate, keystone_server)


def test_task_interrupted_by_a_crash_reads_failed_after_restart(tmp_path, deployment, keystone_server):
    environ, gate = deployment
    environ["GLANCESYNCAPP_DATABASE_PATH"] = str(tmp_path)
    migrate(environ)
    token = keystone_server.keystone.issue("admin", ("admin",))
    service = gunicorn_service(tmp_path, environ, workers=2).start()
    try:
        status, body = http("POST", f"{service.url}/regions/RegionA", token)
        assert (status, body["status"]) == (200, "syncing")
        task_id = body["taskId"]
    finally:
        service.kill()  # SIGKILL to gunicorn's master and workers, mid-task

    restarted = gunicorn_service(tmp_path, environ, workers=2).start()
    try:
        status, body = http("GET", f"{restarted.url}/regions/RegionA/tasks/{task_id}", token)
        assert status == 200
        assert body["status"] == "failed"
        assert body["message"].startswith("interrupted: the process running the sync")
        assert body["ended"] is not None
        # The region is free again: a new POST starts a new task.
        status, again = http("POST", f"{restarted.url}/regions/RegionA", token)
        assert status == 200 and again["taskId"] != task_id
        gate.open()
        assert wait_for_status(restarted, token, again["taskId"], "synced")["status"] == "synced"
    finally:
        gate.open()
        restarted.stop()


@pytest.fixture(scope="module")
def postgres():
    bindir = postgres_bindir()
    if bindir is None:
        pytest.fail(POSTGRES_INSTALL_HINT, pytrace=False)
    with PostgresServer(bindir) as server:
        yield server


def test_postgresql_migrations_constraint_and_task_flow(tmp_path, deployment, keystone_server, postgres):
    environ, gate = deployment
    environ["DATABASE_URL"] = postgres.url.replace("postgresql+psycopg://", "postgresql://")
    migrate(environ)

    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from fiwareglancesync.app import create_app
    from fiwareglancesync.app.extensions import db
    from fiwareglancesync.app.models import Task

    app = create_app({"SQLALCHEMY_DATABASE_URI": postgres.url, "RECOVER_TASKS_AT_START": False})
    with app.app_context():
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, db.metadata) == []
            indexes = {row[0]: row[1] for row in connection.exec_driver_sql(
                "select indexname, indexdef from pg_indexes where tablename = 'task'")}
        assert "WHERE ((status)::text = 'syncing'::text)" in indexes["uq_task_region_syncing"]
        db.session.add(Task(region="RegionX", owner="h/b/1/1"))
        db.session.commit()
        db.session.add(Task(region="RegionX", owner="h/b/1/1"))
        with pytest.raises(sa.exc.IntegrityError):
            db.session.commit()
        db.session.rollback()
        db.session.execute(sa.delete(Task))
        db.session.commit()
        db.engine.dispose()

    one_task_from_concurrent_posts(tmp_path, environ, gate, keystone_server)


def test_runserver_serves_the_api(tmp_path, deployment, keystone_server):
    environ, gate = deployment
    environ["GLANCESYNCAPP_DATABASE_PATH"] = str(tmp_path)
    migrate(environ)
    port = free_port()
    service = ServiceProcess([bin_path("glancesync-server"), "runserver", "-t", "127.0.0.1", "-p", str(port)],
                             environ, f"http://127.0.0.1:{port}", tmp_path / "runserver.log").start()
    try:
        token = keystone_server.keystone.issue("admin", ("admin",))
        status, body = http("GET", f"{service.url}/regions/RegionB", token)
        assert status == 200
        assert [image["status"] for image in body["images"]] == ["ok", "pending_upload"]
    finally:
        service.stop()


def test_shell_has_the_app_context(tmp_path, deployment):
    import subprocess

    environ, _ = deployment
    environ["GLANCESYNCAPP_DATABASE_PATH"] = str(tmp_path)
    migrate(environ)

    result = subprocess.run([bin_path("glancesync-server"), "shell"], env=environ, capture_output=True, text=True,
                            input="print(Task.__tablename__, db.session.query(Task).count())\n", timeout=60)

    assert result.returncode == 0, result.stderr
    assert "task 0" in result.stdout
    assert "service-secret" not in result.stdout + result.stderr


def test_postgresql_with_two_workers_shows_the_same_status_page_from_either(tmp_path, deployment, postgres):
    """The snapshots live in the database and the session key is shared by the workers of a
    start: whichever worker answers, the logged-in page is the same."""
    import http.cookiejar
    import re
    import urllib.error
    import urllib.parse
    import urllib.request

    from .fake_keystone import SERVICE_PASSWORD, SERVICE_PROJECT, SERVICE_USER

    environ, _ = deployment
    environ["DATABASE_URL"] = postgres.url.replace("postgresql+psycopg://", "postgresql://")
    migrate(environ)
    service = gunicorn_service(tmp_path, environ, workers=2).start()
    try:
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar),
                                             urllib.request.ProxyHandler({}))
        form = urllib.parse.urlencode({"username": SERVICE_USER, "password": SERVICE_PASSWORD,
                                       "project": SERVICE_PROJECT, "domain": "Default"}).encode()
        with opener.open(service.url + "/status/login", data=form, timeout=30) as response:
            assert response.status == 200  # the 303 followed to the page

        def table() -> str | None:
            """RegionB's image table (its page answers 404 until the first refresh stored it)."""
            try:
                with opener.open(service.url + "/status/regions/RegionB", timeout=30) as response:
                    page = response.read().decode()
            except urllib.error.HTTPError as answer:
                answer.close()
                if answer.code == 404:
                    return None
                raise
            assert 'type="password"' not in page  # logged in, whichever worker answered
            found = re.findall(r'<td class="status [^"]+" data-image="[^"]+" title="[^"]*">[^<]*<', page)
            return "\n".join(found) if found else None

        deadline = time.monotonic() + 60
        while (first := table()) is None:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        pages = {table() for _ in range(20)}
        assert pages == {first}
        assert 'data-image="base_ubuntu" title="image id b1">ok<' in first
    finally:
        service.stop()
        engine = sa.create_engine(postgres.url)
        with engine.begin() as connection:
            connection.exec_driver_sql("delete from region_snapshot")
            connection.exec_driver_sql("delete from task")
        engine.dispose()
