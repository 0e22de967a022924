"""The errors the service's layers raise to end a request; ``api/errors.py`` alone turns them
into an HTTP status and the JSON envelope ``{"error": {"message": ..., "code": ...}}``.

* :class:`ServiceError` and its subclasses are domain outcomes (a region that is not listed, a
  task that does not exist or still runs, a service too busy to start a task, a cloud that did
  not answer in time).  They carry a
  message, never an HTTP code: the mapping to a status is ``api/errors.py``'s table.
* :class:`ApiError` carries its HTTP code itself.  Only :mod:`.auth` raises it: a token check
  ends with 401 (the message says why) or with 500/502/503 for Keystone trouble, a distinction
  that belongs to the token check and has no domain meaning of its own.
"""


class ServiceError(Exception):
    """A request the service cannot satisfy, for a reason its ``message`` (one line) gives."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadRegion(ServiceError):
    """The region is not one that ``sync.py --show-regions`` lists."""

    MESSAGE = "Bad region"

    def __init__(self, region: str):
        super().__init__(self.MESSAGE)
        self.region = region


class TaskNotFound(ServiceError):
    """No such task, or the task belongs to another region."""

    def __init__(self, region: str, task_id: str):
        super().__init__(f"Task {task_id} not found in region {region}")
        self.region = region
        self.task_id = task_id


class TaskStillSyncing(ServiceError):
    """The task cannot be deleted: it is still ``syncing``."""

    MESSAGE = "Task status is syncing. Unable to delete it."

    def __init__(self, task_id: str):
        super().__init__(self.MESSAGE)
        self.task_id = task_id


class ServiceBusy(ServiceError):
    """A task could not be started now; the same request may succeed later."""


class ShuttingDown(ServiceBusy):
    """The task pool of this process no longer accepts work."""

    def __init__(self):
        super().__init__("The service is shutting down; try again")


class TaskContention(ServiceBusy):
    """Other requests kept winning the race to create the region's task."""

    def __init__(self, region: str):
        super().__init__(f"Could not start a task for region {region}: too much contention, try again")
        self.region = region


class BackendTimeout(ServiceError):
    """Keystone or Glance did not answer a request's call within REQUEST_TIMEOUT (see bounded.py)."""


class ApiError(Exception):
    """End the request with HTTP ``code`` and ``message`` (one line, no credentials); see above
    for who raises it."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message
