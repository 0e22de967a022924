"""The engine's error types.

Every error the engine raises on purpose is a :class:`GlanceSyncError`.  The shells translate
them once: the CLI into one ``ERROR:`` line and an exit status, the REST service into the JSON
error envelope.  Messages name what is wrong (file, section, option, region, image) and never
contain a credential.
"""


class GlanceSyncError(Exception):
    """Base class of every error the engine reports to an operator."""


class ConfigError(GlanceSyncError):
    """glancesync.conf, a ``--config`` override or the environment is unusable."""


class UsageError(GlanceSyncError):
    """The command line asks for something that cannot be done (unknown target, ...)."""


class BackupFormatError(GlanceSyncError):
    """A backup CSV file (mock store, seed directory) holds a malformed row."""


class FacadeError(GlanceSyncError):
    """A Glance or Keystone server (or the mock store) failed an operation.

    ``region`` is the full name of the region involved, when there is one.  ``unreachable``:
    the server did not answer (refused or broken connection, timeout), as opposed to answering
    with an error; the REST service says 503 for the one and 502 for the other.
    """

    def __init__(self, message: str, region: str | None = None, *, unreachable: bool = False):
        super().__init__(message)
        self.region = region
        self.unreachable = unreachable


class ListingTimeout(FacadeError):
    """Listing the images of a region took longer than ``list_images_timeout``."""


class ImageNotFound(FacadeError):
    """The image addressed does not exist in its region."""


class RegionNotFound(FacadeError):
    """The target has no such region (no public image endpoint in its catalog)."""


class TransferError(FacadeError):
    """Image data could not be read, sent, or did not match the master's checksum."""


class ImportFailed(TransferError):
    """A glance-download import did not produce the copy (refused, task failed, timed out); the
    copy is already deleted.  Under ``transfer_method = auto`` the image is streamed instead.
    ``reason`` is the cause alone (without the region/image prefix), for the fallback WARNING;
    ``region_wide``: the region's Glance refused or failed the import itself (not a timeout), as
    its configuration would for every other image (an ``import_filtering_opts`` that does not
    allow the source, the method not enabled).  ``undeleted``: the id of the copy when even its
    deletion failed (a Glance that does not answer, or holds the import's lock), for the caller to
    delete later."""

    def __init__(self, message: str, region: str | None = None, reason: str = "", region_wide: bool = False):
        super().__init__(message, region)
        self.reason = reason or message
        self.region_wide = region_wide
        self.undeleted: str | None = None


class ImportAltered(TransferError):
    """A glance-download import finished with data other than the master's (an import plugin of
    the region's Glance, such as image_conversion, changed it); the copy is already deleted and
    the region fails: its target needs ``transfer_method = stream``."""


class RegionLocked(GlanceSyncError):
    """Another run holds the region's lock (or the lock cannot be taken); the region is skipped."""

    def __init__(self, message: str, region: str):
        super().__init__(message)
        self.region = region


class CoordinationError(GlanceSyncError):
    """The coordination backend of the region locks (``coordination_url``) cannot be reached or
    used; the message names it without credentials."""


class RegionError(GlanceSyncError):
    """A region could not be synchronised or inspected; the run goes on with the next one."""

    def __init__(self, message: str, region: str):
        super().__init__(message)
        self.region = region


class StoresFailed(RegionError):
    """Copies of images to some of the region's stores failed; the images stay usable in the
    stores they are in, and the region's other work was done."""


class ImagesRefused(RegionError):
    """Images the region's Glance would refuse were not copied (its image schema requires a
    property they lack); the region's other work was done."""


def one_line(cause: object) -> str:
    """The first non-blank line of an exception's (or any value's) text, for a log line or a
    message; the exception's type name when it has no text."""
    for line in str(cause).splitlines():
        if line.strip():
            return line.strip()
    return type(cause).__name__
