"""OpenStackFacade's glance-download imports (README "How copies are made") against a fake Glance
client:
discovery once per region, the create + import requests, polling until active, verification
against the master (an import plugin that changes the data), and no copy left behind by a
refused, failed or timed-out import."""

import hashlib
import time

import pytest
from glanceclient import exc as glance_exc

from fiwareglancesync.glancesync.errors import ImportAltered, ImportFailed, TransferError
from fiwareglancesync.glancesync.facades import openstack
from fiwareglancesync.glancesync.facades.base import GLANCE_DOWNLOAD
from fiwareglancesync.glancesync.facades.openstack import OpenStackFacade
from fiwareglancesync.glancesync.region import Region
from tests.facades.test_openstack_unit import DATA, REGION, FakeGlance, FakeSession, Response, master_image, target

MASTER = Region("master", "Madrid")
MASTER_ID = "m-1"


class ImportingGlance(FakeGlance):
    """A FakeGlance with ``/v2/info/import``, ``POST /v2/images/{id}/import`` and tasks.

    ``outcome`` decides what an accepted import becomes after ``polls`` looks at the image:
    ``ok`` (the master's data), ``fail`` (back to queued with os_glance_failed_import and a failed
    task), ``alter`` (active with other data: an image_conversion plugin), ``never`` (importing
    for ever)."""

    def __init__(self, methods=("glance-direct", "web-download", GLANCE_DOWNLOAD), outcome="ok", polls=2):
        super().__init__()
        self.methods, self.outcome, self.polls = methods, outcome, polls
        self.imports: list[tuple[str, dict]] = []
        self.looks: dict[str, int] = {}
        self.tasks: dict[str, list] = {}

    def post(self, url, data):
        if url.endswith("/import"):
            self._maybe_fail("import")
            image_id = url.split("/")[3]
            self.imports.append((image_id, data))
            self.records[image_id]["status"] = "importing"
            self.tasks[image_id] = [{"status": "processing", "message": ""}]
            return Response(202), None
        return super().post(url, data)

    def get(self, url, timeout=None, headers=None):
        if url == "/v2/info/import":
            self._maybe_fail("info")
            if self.methods is None:
                raise glance_exc.HTTPNotFound("Not Found")
            return Response(), {"import-methods": {"type": "array", "value": list(self.methods)}}
        if url.endswith("/tasks"):
            self.calls.append("tasks")
            return Response(), {"tasks": self.tasks.get(url.split("/")[3], [])}
        if url.startswith("/v2/images/") and url.count("/") == 3:
            image_id = url.split("/")[3]
            record = self.records.get(image_id)
            if record is not None and (record["status"] == "importing" or record.get("os_glance_import_task")):
                self.looks[image_id] = self.looks.get(image_id, 0) + 1
                if self.looks[image_id] >= self.polls:
                    self._complete(image_id, record)
        return super().get(url, timeout=timeout, headers=headers)

    def _complete(self, image_id, record):
        if self.outcome == "never":
            return
        if self.outcome == "fail":
            record.update(status="queued", os_glance_failed_import="file")
            self.tasks[image_id] = [{"status": "failure",
                                     "message": "URI does not pass filtering: http://127.0.0.1:9292/v2/images/m-1/file"}]
            return
        data = DATA if self.outcome == "ok" else DATA[:1000] + b"converted"
        if self.outcome == "convert":  # image_conversion: another format, size and hashes; same disk
            record.update(disk_format=self.converted_format, virtual_size=self.virtual_size)
        if record.get("os_glance_import_task") is None and self.looks[image_id] == self.polls:
            record.update(status="active", os_glance_import_task="t-1")  # active, the flow not over yet
            return
        record.pop("os_glance_import_task", None)
        record.update(status="active", size=len(data), checksum=hashlib.md5(data).hexdigest(),
                      os_hash_algo="sha512", os_hash_value=hashlib.sha512(data).hexdigest())
        self.tasks[image_id] = [{"status": self.task_outcome, "message": ""}]

    converted_format, virtual_size, task_outcome = "raw", 4096, "success"


@pytest.fixture(autouse=True)
def waits(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(openstack.retry, "sleep", slept.append)
    return slept


def facade_over(glance, **fields):
    facade = OpenStackFacade(target(**fields))
    facade._session = FakeSession()
    facade._clients[REGION.name] = glance
    return facade


def test_import_methods_are_asked_once_per_region():
    glance = ImportingGlance()
    facade = facade_over(glance)
    assert GLANCE_DOWNLOAD in facade.import_methods(REGION)
    assert GLANCE_DOWNLOAD in facade.import_methods(REGION)
    assert glance.calls.count("info") == 1


def test_a_glance_without_the_import_api_advertises_nothing():
    assert facade_over(ImportingGlance(methods=None)).import_methods(REGION) == frozenset()
    assert GLANCE_DOWNLOAD not in facade_over(ImportingGlance(methods=("glance-direct",))).import_methods(REGION)


def test_an_import_creates_a_marked_private_copy_imports_polls_verifies_and_publishes(waits):
    glance = ImportingGlance(polls=3)
    facade = facade_over(glance)
    image = master_image(protected=True)
    image_id = facade.start_import(REGION, image, MASTER, MASTER_ID)
    record = glance.records[image_id]
    assert (record["status"], record["visibility"], record["protected"]) == ("importing", "private", False)
    assert record["glancesync_in_progress"] and record["nid"] == "1" and record["disk_format"] == "qcow2"
    assert glance.imports == [(image_id, {"method": {"name": "glance-download", "glance_region": "Madrid",
                                                     "glance_image_id": MASTER_ID,
                                                     "glance_service_interface": "public"}})]
    uploaded = facade.finish_import(REGION, image_id, image)
    assert (uploaded.image_id, uploaded.bytes_sent, uploaded.method) == (image_id, 0, GLANCE_DOWNLOAD)
    record = glance.records[image_id]
    assert "glancesync_in_progress" not in record
    assert (record["visibility"], record["protected"]) == ("public", True)
    assert len(waits) == 3 and waits[0] < waits[1] < waits[2]  # polled with backoff, until the flow ended


@pytest.mark.parametrize("outcome, cause", [
    ("fail", "the region's Glance failed the import (image queued, task: URI does not pass filtering"),
    ("never", "the region's imports did not finish within import_timeout (5 s); the image is importing"),
])
def test_a_failed_or_timed_out_import_deletes_the_copy(monkeypatch, outcome, cause):
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    monkeypatch.setattr(openstack.retry, "sleep", lambda seconds: now.__setitem__(0, now[0] + seconds))
    glance = ImportingGlance(outcome=outcome)
    facade = facade_over(glance, import_timeout=5)
    image_id = facade.start_import(REGION, master_image(), MASTER, MASTER_ID)
    with pytest.raises(ImportFailed) as caught:
        facade.finish_import(REGION, image_id, master_image())
    assert str(caught.value).startswith("Spain: Import of base Failed. Cause: ")
    assert cause in caught.value.reason
    assert glance.records == {} and glance.calls[-1] == "delete"


def test_a_refused_import_request_deletes_the_copy():
    glance = ImportingGlance()
    glance.fail["import"] = glance_exc.HTTPConflict("Import method glance-download is not enabled")
    facade = facade_over(glance)
    with pytest.raises(ImportFailed) as caught:
        facade.start_import(REGION, master_image(), MASTER, MASTER_ID)
    assert "Glance refused the import" in caught.value.reason and "not enabled" in caught.value.reason
    assert glance.records == {}


def test_an_import_request_without_answer_fails_the_region_and_is_not_called_refused():
    """A transport failure is not a refusal: under ``auto`` it is not streamed instead (the stream
    would go to the same Glance), the region fails as for a failed stream, no copy left."""
    glance = ImportingGlance()
    glance.fail["import"] = glance_exc.CommunicationError("Unable to establish connection to http://spain:9292")
    facade = facade_over(glance)
    with pytest.raises(TransferError) as caught:
        facade.start_import(REGION, master_image(), MASTER, MASTER_ID)
    assert not isinstance(caught.value, ImportFailed)
    assert str(caught.value) == ("Spain: Import of base Failed. Cause: the region's Glance did not answer the "
                                 "import request: Unable to establish connection to http://spain:9292")
    assert glance.records == {}


def test_data_changed_by_an_import_plugin_deletes_the_copy_and_says_to_stream():
    glance = ImportingGlance(outcome="alter")
    facade = facade_over(glance)
    image_id = facade.start_import(REGION, master_image(), MASTER, MASTER_ID)
    with pytest.raises(ImportAltered) as caught:
        facade.finish_import(REGION, image_id, master_image())
    message = str(caught.value)
    assert "the region's Glance changed the data on import" in message
    assert "image_conversion" in message and "set transfer_method = stream for target master" in message.lower()
    assert not isinstance(caught.value, ImportFailed)  # never a reason to stream silently
    assert glance.records == {}


def test_an_interrupt_while_waiting_deletes_the_copy(monkeypatch):
    class Interrupt(BaseException):
        pass

    def interrupted(seconds):
        raise Interrupt()

    monkeypatch.setattr(openstack.retry, "sleep", interrupted)
    glance = ImportingGlance(polls=5)
    facade = facade_over(glance)
    image_id = facade.start_import(REGION, master_image(), MASTER, MASTER_ID)
    with pytest.raises(Interrupt):
        facade.finish_import(REGION, image_id, master_image())
    assert glance.records == {}


def test_create_body_of_an_import_is_the_streamed_copys():
    streamed, imported = ImportingGlance(), ImportingGlance()
    image = master_image(user_properties={"nid": "7", "type": "base"}, min_disk=3, min_ram=512)
    facade_over(imported).start_import(REGION, image, MASTER, MASTER_ID)
    from tests.facades.test_openstack_unit import Source
    facade_over(streamed).upload_image(REGION, image, Source())
    keys = ("name", "disk_format", "container_format", "min_disk", "min_ram", "nid", "type")
    (one,), (other,) = streamed.records.values(), imported.records.values()
    assert {k: one[k] for k in keys} == {k: other[k] for k in keys}
    assert other["glancesync_in_progress"] and other["status"] == "importing"  # not finished yet


# ---------------------------------------------------------------- regions that convert (accept_conversion)
def converting_glance(**changes):
    glance = ImportingGlance(outcome="convert")
    for name, value in changes.items():
        setattr(glance, name, value)
    return glance


def test_without_accept_conversion_a_converted_copy_is_deleted_and_the_message_names_both_ways_out():
    glance = converting_glance()
    facade = facade_over(glance)
    image_id = facade.start_import(REGION, master_image(virtual_size=4096), MASTER, MASTER_ID)
    with pytest.raises(ImportAltered) as caught:
        facade.finish_import(REGION, image_id, master_image(virtual_size=4096))
    message = str(caught.value)
    assert "set accept_conversion = <disk format> for target master" in message.lower()
    assert "set transfer_method = stream for target master" in message.lower()
    assert glance.records == {}


def test_an_accepted_conversion_is_verified_by_format_virtual_size_and_task_then_published():
    glance = converting_glance()
    facade = facade_over(glance, accept_conversion="raw")
    image = master_image(virtual_size=4096)
    image_id = facade.start_import(REGION, image, MASTER, MASTER_ID)
    uploaded = facade.finish_import(REGION, image_id, image)
    record = glance.records[uploaded.image_id]
    assert (record["disk_format"], record["visibility"]) == ("raw", "public")
    assert record["checksum"] != image.checksum and "glancesync_in_progress" not in record
    assert "tasks" in glance.calls


@pytest.mark.parametrize("changes, master_virtual_size, cause", [
    ({"converted_format": "vmdk"}, 4096, "converted the copy to vmdk, but target master accepts only raw"),
    ({"virtual_size": 2048}, 4096, "virtual size is 2048, the master's is 4096"),
    ({"task_outcome": "failure"}, 4096, "import task ended failure, not success"),
])
def test_a_conversion_that_does_not_check_out_deletes_the_copy_and_fails(changes, master_virtual_size, cause):
    glance = converting_glance(**changes)
    facade = facade_over(glance, accept_conversion="raw")
    image = master_image(virtual_size=master_virtual_size)
    image_id = facade.start_import(REGION, image, MASTER, MASTER_ID)
    with pytest.raises(ImportAltered) as caught:
        facade.finish_import(REGION, image_id, image)
    assert cause in str(caught.value)
    assert not isinstance(caught.value, ImportFailed)
    assert glance.records == {}


def test_a_master_without_a_virtual_size_is_not_held_against_the_copy():
    glance = converting_glance(virtual_size=999)
    facade = facade_over(glance, accept_conversion="raw")
    image_id = facade.start_import(REGION, master_image(), MASTER, MASTER_ID)
    assert facade.finish_import(REGION, image_id, master_image()).image_id == image_id


# ---------------------------------------------------------------- preserve_ids
def test_preserve_ids_creates_the_copy_with_the_lineage_id_and_falls_back_on_409(caplog):
    from fiwareglancesync.glancesync.image import SOURCE_ID

    glance = ImportingGlance()
    facade = facade_over(glance, preserve_ids=True)
    image = master_image(user_properties={"nid": "1", SOURCE_ID: "0f0f0f0f-0000-4000-8000-000000000001"})
    first = facade.start_import(REGION, image, MASTER, MASTER_ID)
    assert first == "0f0f0f0f-0000-4000-8000-000000000001"
    assert not caplog.records
    second = facade.start_import(REGION, image, MASTER, MASTER_ID)  # that id is taken now
    assert second != first and second in glance.records
    [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warning == (f"{REGION.fullname}: image base cannot keep the master image's id {first} (an image with "
                       "that id exists or existed in this region); it gets a fresh id")


def test_without_preserve_ids_the_region_chooses_the_id():
    from fiwareglancesync.glancesync.image import SOURCE_ID

    glance = ImportingGlance()
    image = master_image(user_properties={SOURCE_ID: "0f0f0f0f-0000-4000-8000-000000000001"})
    assert facade_over(glance).start_import(REGION, image, MASTER, MASTER_ID) != "0f0f0f0f-0000-4000-8000-000000000001"


class Clock:
    """time.monotonic and the facade's sleep on one fake clock."""

    def __init__(self, monkeypatch):
        self.now = 100.0
        monkeypatch.setattr(time, "monotonic", lambda: self.now)
        monkeypatch.setattr(openstack.retry, "sleep", self.sleep)

    def sleep(self, seconds):
        self.now += seconds


class StallingGlance(ImportingGlance):
    """An import whose task says ``Copied N MiB`` (N growing) for ``progressing`` looks, then
    never changes again (its Glance worker was killed), or whose Glance stops answering
    (``stopped``)."""

    def __init__(self, progressing=3, stopped=False):
        super().__init__(outcome="never")
        self.progressing, self.stopped, self.task_looks = progressing, stopped, 0

    def get(self, url, timeout=None, headers=None):
        if url.endswith("/tasks"):
            self.task_looks += 1
            copied = min(self.task_looks, self.progressing)
            image_id = url.split("/")[3]
            self.tasks[image_id] = [{"status": "processing", "message": f"Copied {copied} MiB",
                                     "updated_at": f"t{copied}", "created_at": "t0"}]
        elif self.stopped and self.task_looks >= self.progressing and url.count("/") == 3:
            raise glance_exc.CommunicationError("Error finding address: timed out")
        return super().get(url, timeout=timeout, headers=headers)


@pytest.mark.parametrize("stopped, seen", [(False, "the image is importing"),
                                           (True, "its Glance does not answer")])
def test_an_import_without_progress_for_import_stall_timeout_is_dead_and_its_copy_deleted(monkeypatch, stopped, seen):
    clock = Clock(monkeypatch)
    glance = StallingGlance(stopped=stopped)
    facade = facade_over(glance, import_timeout=3600, import_stall_timeout=30)
    image_id = facade.start_import(REGION, master_image(), MASTER, MASTER_ID)
    copied = []
    began = clock.now
    with pytest.raises(ImportFailed) as caught:
        facade.finish_import(REGION, image_id, master_image(), progress=copied.append)
    assert "the import made no progress for 30 s (import_stall_timeout)" in caught.value.reason
    assert seen in caught.value.reason
    assert 30 <= clock.now - began < 40  # not import_timeout
    assert max(copied) == 3 * 1024 * 1024 and copied == sorted(copied)  # server-side progress, as it grew
    if not stopped:
        assert glance.records == {} and caught.value.undeleted is None


def test_a_dead_import_whose_copy_cannot_be_deleted_names_it(monkeypatch):
    Clock(monkeypatch)
    glance = StallingGlance()
    facade = facade_over(glance, import_stall_timeout=10, retries=0)
    image_id = facade.start_import(REGION, master_image(), MASTER, MASTER_ID)
    glance.fail["delete"] = glance_exc.HTTPConflict("Image has active task")
    with pytest.raises(ImportFailed) as caught:
        facade.finish_import(REGION, image_id, master_image())
    assert caught.value.undeleted == image_id and image_id in glance.records


def test_imports_wait_until_the_deadline_they_are_given_not_a_full_import_timeout(monkeypatch):
    clock = Clock(monkeypatch)
    glance = ImportingGlance(outcome="never")
    facade = facade_over(glance, import_timeout=60, import_stall_timeout=1000)
    image_id = facade.start_import(REGION, master_image(), MASTER, MASTER_ID)
    with pytest.raises(ImportFailed, match=r"imports did not finish within import_timeout \(60 s\)"):
        facade.finish_import(REGION, image_id, master_image(), deadline=clock.now + 7)
    assert clock.now == pytest.approx(107, abs=0.01)


def test_an_active_copy_whose_lock_stays_is_judged_by_its_data(monkeypatch):
    """A flow killed after the image became active never drops Glance's import lock: the copy
    is verified and published all the same (not judged failed)."""
    clock = Clock(monkeypatch)
    glance = ImportingGlance(polls=1)
    facade = facade_over(glance, import_stall_timeout=1000)
    image_id = facade.start_import(REGION, master_image(), MASTER, MASTER_ID)
    record = glance.records[image_id]
    record.update(status="active", os_glance_import_task="t-dead", size=len(DATA),
                  checksum=hashlib.md5(DATA).hexdigest(), os_hash_algo="sha512",
                  os_hash_value=hashlib.sha512(DATA).hexdigest())
    glance.looks[image_id] = -10**6  # never completes by itself: the lock stays
    began = clock.now
    uploaded = facade.finish_import(REGION, image_id, master_image())
    assert uploaded.image_id == image_id and "glancesync_in_progress" not in glance.records[image_id]
    assert clock.now - began <= openstack.imports.ACTIVE_SETTLE + openstack.imports.IMPORT_POLL_MAX
