"""POST /regions/<region> and GET/DELETE /regions/<region>/tasks/<task>: the task lifecycle."""

import subprocess
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from fiwareglancesync.app import recover_tasks, services
from fiwareglancesync.app.extensions import db
from fiwareglancesync.app.models import Task, TaskStatus, utcnow
from fiwareglancesync.glancesync.errors import RegionError
from fiwareglancesync.glancesync.identity import ProcessIdentity

from .conftest import ManualRunner
from .mock_cloud import read_store_names


def start(client, headers, region="RegionA"):
    response = client.post(f"/regions/{region}", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_post_answers_the_new_task_as_syncing(client, admin_headers):
    body = start(client, admin_headers)

    assert list(body) == ["taskId", "status"]
    assert body["status"] == "syncing"
    uuid.UUID(body["taskId"])


def test_task_syncs_the_region_in_the_cloud(client, admin_headers, engine_env):
    task_id = start(client, admin_headers)["taskId"]

    response = client.get(f"/regions/RegionA/tasks/{task_id}", headers=admin_headers)

    assert response.status_code == 200
    body = response.get_json()
    assert body["taskId"] == task_id
    assert body["status"] == "synced"
    assert body["region"] == "RegionA"
    assert body["message"] is None
    assert body["created"] <= body["started"] <= body["ended"]
    assert body["ended"].endswith("Z")
    assert read_store_names(engine_env["GLANCESYNC_MOCKPERSISTENT_PATH"], "RegionA") == ["base_centos", "base_ubuntu"]
    statuses = client.get("/regions/RegionA", headers=admin_headers).get_json()["images"]
    assert {image["status"] for image in statuses} == {"ok"}


def test_task_records_who_requested_it(app, admin_headers):
    task_id = start(app.test_client(), admin_headers)["taskId"]

    with app.app_context():
        assert db.session.get(Task, task_id).requested_by == "admin"


def test_post_while_syncing_returns_the_running_task(make_app, admin_headers):
    runner = ManualRunner()
    client = make_app(runner=runner).test_client()

    first = start(client, admin_headers)
    second = start(client, admin_headers)

    assert second == first == {"taskId": first["taskId"], "status": "syncing"}
    assert len(runner.pending) == 1
    get = client.get(f"/regions/RegionA/tasks/{first['taskId']}", headers=admin_headers).get_json()
    assert (get["status"], get["started"], get["ended"]) == ("syncing", None, None)


def test_finished_task_does_not_block_a_new_one(make_app, admin_headers):
    runner = ManualRunner()
    client = make_app(runner=runner).test_client()
    first = start(client, admin_headers)["taskId"]
    runner.run_all()

    second = start(client, admin_headers)["taskId"]

    assert second != first
    assert client.get(f"/regions/RegionA/tasks/{first}", headers=admin_headers).get_json()["status"] == "synced"


def test_tasks_of_different_regions_run_side_by_side(make_app, admin_headers):
    runner = ManualRunner()
    client = make_app(runner=runner).test_client()

    ids = {start(client, admin_headers, region)["taskId"] for region in ("RegionA", "RegionB")}

    assert len(ids) == 2
    assert runner.run_all() == 2


def test_task_of_another_region_is_404(client, admin_headers):
    task_id = start(client, admin_headers, "RegionA")["taskId"]

    for method in ("GET", "DELETE"):
        response = client.open(f"/regions/RegionB/tasks/{task_id}", method=method, headers=admin_headers)
        assert (response.status_code, response.get_json()) == (
            404, {"error": {"message": f"Task {task_id} not found in region RegionB", "code": 404}})


def test_unknown_task_is_404(client, admin_headers):
    response = client.get("/regions/RegionA/tasks/no-such-task", headers=admin_headers)

    assert (response.status_code, response.get_json()) == (
        404, {"error": {"message": "Task no-such-task not found in region RegionA", "code": 404}})


def test_delete_of_a_syncing_task_is_400(make_app, admin_headers):
    runner = ManualRunner()
    client = make_app(runner=runner).test_client()
    task_id = start(client, admin_headers)["taskId"]

    response = client.delete(f"/regions/RegionA/tasks/{task_id}", headers=admin_headers)

    assert (response.status_code, response.get_json()) == (
        400, {"error": {"message": "Task status is syncing. Unable to delete it.", "code": 400}})
    assert client.get(f"/regions/RegionA/tasks/{task_id}", headers=admin_headers).status_code == 200


def test_delete_of_a_finished_task_is_200_with_empty_body_and_forgets_it(client, admin_headers):
    task_id = start(client, admin_headers)["taskId"]

    response = client.delete(f"/regions/RegionA/tasks/{task_id}", headers=admin_headers)

    assert response.status_code == 200
    assert response.data == b""
    assert client.get(f"/regions/RegionA/tasks/{task_id}", headers=admin_headers).status_code == 404
    assert client.delete(f"/regions/RegionA/tasks/{task_id}", headers=admin_headers).status_code == 404


class FailingSyncEngine:
    def __init__(self, engine, error):
        self.engine = engine
        self.error = error

    def show_regions(self):
        return self.engine.show_regions()

    def sync_region(self, region, dry_run=False):
        raise self.error


@pytest.mark.parametrize("error, message", [
    (RegionError("RegionA: upload of base_centos failed: checksum mismatch", "RegionA"),
     "RegionA: upload of base_centos failed: checksum mismatch"),
    (ZeroDivisionError("division by zero"), "internal error: ZeroDivisionError: division by zero"),
], ids=["engine error", "bug"])
def test_failed_sync_records_failed_with_the_reason(make_app, real_engine, admin_headers, error, message):
    client = make_app(engine_factory=lambda: FailingSyncEngine(real_engine(), error)).test_client()
    task_id = start(client, admin_headers)["taskId"]

    body = client.get(f"/regions/RegionA/tasks/{task_id}", headers=admin_headers).get_json()

    assert (body["status"], body["message"]) == ("failed", message)
    assert body["ended"] is not None
    assert client.delete(f"/regions/RegionA/tasks/{task_id}", headers=admin_headers).status_code == 200


# ------------------------------------------------------------------------ database guarantees
def add_task(region="RegionA", status=TaskStatus.SYNCING, owner=None, heartbeat_age=0.0) -> str:
    task = Task(region=region, status=status, owner=owner or str(ProcessIdentity.current()),
                heartbeat_at=utcnow() - timedelta(seconds=heartbeat_age))
    db.session.add(task)
    db.session.commit()
    return task.id


def test_database_refuses_a_second_syncing_task_for_a_region(app):
    with app.app_context():
        add_task()
        with pytest.raises(IntegrityError):
            add_task()
        db.session.rollback()
        add_task(status=TaskStatus.SYNCED)
        add_task(status=TaskStatus.FAILED)
        add_task(region="RegionB")


def dead_process() -> ProcessIdentity:
    """The identity a process of this host had, once it has exited."""
    child = subprocess.Popen(["true"])
    child.wait()
    me = ProcessIdentity.current()
    return ProcessIdentity(me.host, me.boot_id, child.pid, "1")


def status_of(task_id: str) -> tuple[str, str | None]:
    task = db.session.execute(sa.select(Task).where(Task.id == task_id)).scalar_one()
    return task.status.value, task.message


def test_start_up_marks_tasks_of_dead_processes_failed(app):
    me = ProcessIdentity.current()
    with app.app_context():
        dead = add_task("RegionA", owner=str(dead_process()))
        reused_pid = add_task("RegionB", owner=str(ProcessIdentity(me.host, me.boot_id, me.pid, "1")))
        rebooted = add_task("RegionC", owner=str(ProcessIdentity(me.host, "another-boot", me.pid, me.start)))
        mine = add_task("RegionD")
        finished = add_task("RegionE", status=TaskStatus.SYNCED, owner=str(dead_process()))

    assert recover_tasks(app) == 3

    with app.app_context():
        for task_id in (dead, reused_pid, rebooted):
            status, message = status_of(task_id)
            assert status == "failed"
            assert message.startswith("interrupted: the process running the sync (")
        assert status_of(mine) == ("syncing", None)
        assert status_of(finished) == ("synced", None)


def test_task_of_another_host_fails_only_when_its_heartbeat_is_stale(app):
    with app.app_context():
        fresh = add_task("RegionA", owner="other-host/boot/42/1000", heartbeat_age=10)
        stale = add_task("RegionB", owner="other-host/boot/43/1000", heartbeat_age=121)
        unparsable = add_task("RegionC", owner="something else", heartbeat_age=500)

    assert recover_tasks(app) == 2

    with app.app_context():
        assert status_of(fresh) == ("syncing", None)
        assert status_of(stale)[0] == "failed"
        assert status_of(unparsable)[0] == "failed"


def test_task_of_another_host_fails_once_its_lease_expires(make_app):
    """README "Running on several hosts": TASK_LEASE seconds without a heartbeat."""
    app = make_app(TASK_LEASE=5)
    with app.app_context():
        alive = add_task("RegionA", owner="other-host/boot/42/1000", heartbeat_age=4)
        expired = add_task("RegionB", owner="other-host/boot/43/1000", heartbeat_age=6)

    assert recover_tasks(app) == 1

    with app.app_context():
        assert status_of(alive) == ("syncing", None)
        assert status_of(expired)[0] == "failed"


def test_the_heartbeat_loop_fails_the_tasks_of_a_dead_instance_unasked(make_app):
    """No request looks at the task: the loop of a live process marks it failed."""
    import time

    from fiwareglancesync.app.loops import Heartbeat

    app = make_app(TASK_LEASE=3)
    with app.app_context():
        task_id = add_task(owner="other-host/boot/42/1000", heartbeat_age=4)
    heartbeat = Heartbeat(app, interval=0.05)
    heartbeat.ensure_running()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with app.app_context():
                if status_of(task_id)[0] == "failed":
                    break
            time.sleep(0.05)
    finally:
        heartbeat.stop()
    with app.app_context():
        status, message = status_of(task_id)
    assert status == "failed"
    assert message == "interrupted: the process running the sync (other-host/boot/42/1000) stopped before it finished"


def test_the_heartbeat_interval_is_a_third_of_the_lease_by_default(make_app):
    assert make_app(TASK_LEASE=9, TASK_HEARTBEAT_SECONDS=None).extensions["glancesync"].heartbeat.interval == 3


def test_recovery_on_a_database_without_tables_only_warns(make_app, caplog):
    app = make_app(migrate=False)

    assert recover_tasks(app) == 0
    assert "glancesync-server db upgrade" in caplog.text


def test_create_app_recovers_tasks_at_start(make_app):
    app = make_app()
    with app.app_context():
        orphan = add_task(owner=str(dead_process()))

    restarted = make_app(migrate=False, RECOVER_TASKS_AT_START=True)

    with restarted.app_context():
        assert status_of(orphan)[0] == "failed"


def test_post_replaces_an_orphaned_syncing_task(app, admin_headers):
    with app.app_context():
        orphan = add_task(owner=str(dead_process()))

    new = start(app.test_client(), admin_headers)["taskId"]

    assert new != orphan
    with app.app_context():
        assert status_of(orphan)[0] == "failed"
        assert status_of(new)[0] == "synced"


def test_get_of_an_orphaned_task_reads_failed(app, admin_headers):
    with app.app_context():
        orphan = add_task(owner=str(dead_process()))

    body = app.test_client().get(f"/regions/RegionA/tasks/{orphan}", headers=admin_headers).get_json()

    assert body["status"] == "failed"
    assert body["message"].startswith("interrupted")


def test_heartbeat_refreshes_only_this_process_syncing_tasks(app):
    with app.app_context():
        mine = add_task("RegionA", heartbeat_age=600)
        other = add_task("RegionB", owner="other-host/boot/42/1000", heartbeat_age=600)
        before = utcnow() - timedelta(seconds=60)

        assert services.touch_running_tasks() == 1

        ages = {t.id: t.heartbeat_at for t in db.session.execute(sa.select(Task)).scalars()}
        assert ages[mine] > before
        assert ages[other] < before


def test_heartbeat_thread_refreshes_running_tasks(app, monkeypatch):
    import threading

    from fiwareglancesync.app.loops import Heartbeat

    with app.app_context():
        task_id = add_task(heartbeat_age=600)
    touched = threading.Event()
    real_touch = services.touch_running_tasks

    def touch():
        count = real_touch()
        touched.set()
        return count

    monkeypatch.setattr(services, "touch_running_tasks", touch)
    heartbeat = Heartbeat(app, interval=0.05)
    heartbeat.ensure_running()
    heartbeat.ensure_running()  # idempotent within a process
    try:
        assert touched.wait(10)
    finally:
        heartbeat.stop()
    with app.app_context():
        assert db.session.get(Task, task_id).heartbeat_at > utcnow() - timedelta(seconds=60)


def test_outcome_is_recorded_after_a_database_hiccup(app, admin_headers, monkeypatch):
    real_finish = services.finish_task
    failures = []

    def flaky_finish(task_id, status, message):
        if not failures:
            failures.append(task_id)
            raise sa.exc.OperationalError("UPDATE task", {}, Exception("database is locked"))
        return real_finish(task_id, status, message)

    monkeypatch.setattr(services, "finish_task", flaky_finish)
    monkeypatch.setattr(services, "OUTCOME_RETRY_DELAYS", (0,))

    task_id = start(app.test_client(), admin_headers)["taskId"]

    assert failures == [task_id]
    with app.app_context():
        assert status_of(task_id) == ("synced", None)
