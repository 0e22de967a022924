"""An upload: the data streamed through a :class:`~..verifying.VerifyingReader` into a marked
copy, checked against the master's, then published; a transiently failed data PUT starts the
whole upload again (README "Retries and timeouts")."""

from __future__ import annotations

from ...errors import GlanceSyncError, TransferError
from ...identity import current_marker
from ...image import Image
from ..base import CHUNK_SIZE, ImageSource, Uploaded
from ..verifying import Expected, Mismatch, VerifyingReader, check_copy
from .library_errors import client_errors
from .region_glance import RegionGlance
from .retry import Retries, transient_cause


def client_hashing(expected: Expected) -> bool:
    """Whether an upload hashes its data on the client: only when the master's MD5 and
    ``os_hash_value`` are not both known.  Otherwise the region's own reported size, MD5 and hash
    (Glance hashes what it stores) are compared with the master's, which proves the copy
    (README "Image data: images_dir and verification") and saves the client ~2 CPU-s per 512 MiB."""
    return not (expected.checksum and expected.hash_value)


class RetryableUpload(Exception):
    """The data PUT of an upload failed transiently; its copy is already deleted."""

    def __init__(self, cause: str, error: BaseException, bytes_read: int):
        super().__init__(cause)
        self.cause, self.error, self.bytes_read = cause, error, bytes_read


class ImageUpload:
    """The upload of ``image``'s data from ``source`` to ``glance``'s region; ``prefix`` starts
    its error messages, ``http_timeout`` bounds each send of the data PUT."""

    def __init__(self, glance: RegionGlance, image: Image, source: ImageSource, prefix: str, http_timeout: float):
        self.glance, self.image, self.source, self.prefix = glance, image, source, prefix
        self.http_timeout = http_timeout

    def run(self) -> Uploaded:
        """The new copy and the bytes read from the source by every attempt."""
        glance, image = self.glance, self.image
        budget = Retries(glance.retries)
        bytes_read = 0
        while True:
            try:
                image_id, read = self._once(first=budget.done == 0)
                return Uploaded(image_id, bytes_read + read)
            except RetryableUpload as failed:
                bytes_read += failed.bytes_read
                if not budget.wait(failed.cause, f"{glance.fullname}: {failed.cause} while uploading the data of "
                                                 f"{image.name}; the copy is deleted and the upload starts again "
                                                 f"from the beginning: "):
                    raise TransferError(self.prefix + glance.clean_cause(failed.error), glance.fullname) from None

    def _once(self, first: bool) -> tuple[str, int]:
        """One attempt: open the source, create the marked copy, send the data, check it, finish.
        Raises RetryableUpload (copy deleted) when the data PUT failed transiently."""
        glance, image, prefix, fullname = self.glance, self.image, self.prefix, self.glance.fullname
        try:
            chunks = self.source.open()
        except GlanceSyncError as exc:
            raise TransferError(f"{fullname}: Cannot open the image {image.name} to upload. Cause: "
                                f"{glance.clean_cause(exc)}", fullname) from None
        expected = Expected.of(image)
        reader = VerifyingReader(chunks, expected, CHUNK_SIZE, description=self.source.description,
                                 hashing=client_hashing(expected))
        with reader:
            body, skipped = glance.new_copy(image, str(current_marker()))
            if first:  # the properties left out are told once, not per attempt
                glance.warn_skipped(image, skipped)
            with glance.translated(prefix, error=TransferError):
                image_id = glance.create(body, image.name)
            try:
                try:
                    self._put_data(image_id, reader, expected)
                except client_errors() as exc:
                    cause = transient_cause(exc) if reader.failure is None else None
                    if cause is not None:
                        raise RetryableUpload(cause, exc, reader.bytes_read) from None
                    raise
                self._check_stored(image_id, reader, expected)
                glance.finish(image_id, image)
            except BaseException as exc:  # also KeyboardInterrupt and bugs: never leave a half image behind
                glance.discard(image_id, image.name)
                if not isinstance(exc, Exception) or isinstance(exc, RetryableUpload):
                    raise
                if reader.failure is not None:  # the source or the data (the library may wrap it)
                    raise TransferError(prefix + glance.clean_cause(reader.failure), fullname) from None
                if isinstance(exc, (GlanceSyncError,) + client_errors()):
                    raise TransferError(prefix + glance.clean_cause(exc), fullname) from None
                raise
        return image_id, reader.bytes_read

    def _put_data(self, image_id: str, reader: VerifyingReader, expected: Expected) -> None:
        """The data PUT (what glanceclient's images.upload sends, but with ``Content-Length``
        when the master's size is known: see :class:`~.http.SizedBody`), never retried by itself:
        its body is a stream.  Its socket may wait http_timeout for each send, also while
        connecting (urllib3 sends the body under the connect timeout)."""
        headers = {"Content-Type": "application/octet-stream"}
        if expected.size is not None:
            headers["x-openstack-image-size"] = str(expected.size)
        self.glance.client.put(f"/v2/images/{image_id}/file", headers=headers, data=reader,
                               content_length=expected.size, timeout=(self.http_timeout, self.http_timeout))

    def _check_stored(self, image_id: str, reader: VerifyingReader, expected: Expected) -> None:
        """The region must report an active image with exactly the data that was sent: its size,
        and the MD5 the client computed (or, not hashed here, the master's) and the master's hash."""
        record = self.glance.read(image_id)
        status = record.get("status")
        if status != "active":
            raise TransferError(f"the image is {status} after the upload, not active")
        # not hashed here (client_hashing) only when the master's MD5 is known
        sent = Expected(size=reader.bytes_read, checksum=reader.md5 or expected.checksum,
                        hash_algo=expected.hash_algo, hash_value=expected.hash_value)
        mismatches = check_copy(record, sent)
        if mismatches:
            raise TransferError(_stored_differs(mismatches[0], hashed=reader.md5 is not None))


def _stored_differs(mismatch: Mismatch, hashed: bool) -> str:
    if mismatch.field == "size":
        return f"the region stored {mismatch.stored} bytes, {mismatch.expected} were sent"
    if mismatch.field == "checksum":
        whose = "the data sent has" if hashed else "the master's is"
        return f"the region reports checksum {mismatch.stored}, {whose} {mismatch.expected}"
    return f"the region reports a {mismatch.algo} hash different from the master's"
