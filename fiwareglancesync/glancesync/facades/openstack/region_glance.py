"""One region's Glance as the facade's operations use it: the client's calls with the retry
policy (:mod:`.retry`), error translation (:mod:`.errors`), and the steps that uploads, imports
and metadata updates share (read a record, create a marked copy, patch, delete, discard)."""

from __future__ import annotations

import logging
from typing import Any, Callable, TypeVar

from ...errors import FacadeError, ImageNotFound
from ...image import SOURCE_ID, Image
from ...region import Region
from ..glance_records import PATCH_CONTENT_TYPE, Skipped, create_body, finishing_patch, patch_document
from . import errors
from .library_errors import glance_exc
from .retry import retrying

LOG = logging.getLogger("glancesync.facades.openstack")  # the package's one logger (see .retry)

T = TypeVar("T")


class RegionGlance:
    """``client`` (a :class:`~.http.GlanceHTTP`, or anything answering the same way) of
    ``region``, retrying at most ``retries`` times; ``clean_cause`` makes an exception's
    secret-free one-line cause (:func:`.errors.clean` bound to the facade's target);
    ``keep_ids``: new copies are created with the id of the master image their lineage names
    (the target's ``preserve_ids``); ``publish_at_creation``: copies are created with their final
    visibility and finished by removing their marker alone (a region whose image schema requires
    properties: see :func:`..glance_records.finishing_patch`)."""

    def __init__(self, client: Any, region: Region, retries: int, clean_cause: Callable[[BaseException], str],
                 keep_ids: bool = False, publish_at_creation: bool = False):
        self.client = client
        self.keep_ids = keep_ids
        self.publish_at_creation = publish_at_creation
        self.region = region
        self.fullname = region.fullname
        self.retries = retries
        self.clean_cause = clean_cause

    def retrying(self, operation: str, call: Callable[[], T], *, create: bool = False,
                 deadline: float | None = None) -> T:
        """``call()`` with the retry policy (:func:`.retry.retrying`), WARNINGs naming this region."""
        return retrying(call, self.retries, self.fullname, operation, create=create, deadline=deadline)

    def translated(self, prefix: str, error: type[FacadeError] = FacadeError, timeout_message: str | None = None):
        """:func:`.errors.translated` for this region."""
        return errors.translated(prefix, self.fullname, self.clean_cause, error, timeout_message)

    def read(self, image_id: str) -> dict:
        """The image's record (``GET /v2/images/{id}``); glanceclient's HTTPNotFound if missing."""
        _, record = self.retrying(f"reading image {image_id}", lambda: self.client.get(f"/v2/images/{image_id}"))
        return record

    def record(self, image_id: str, prefix: str) -> dict:
        """The image's record; ImageNotFound (``prefix`` + why) if there is none."""
        try:
            return self.read(image_id)
        except glance_exc.HTTPNotFound:
            raise ImageNotFound(f"{prefix}no image with id {image_id}", self.fullname) from None

    def create(self, body: dict, name: str) -> str:
        """The id of a new image of record ``body``, retried only when nothing can have been
        created.  With ``keep_ids`` it is the master image's id when the region accepts it; a
        region that refuses it (409: an image with that id exists, or existed, there) gives a
        fresh id, with one WARNING."""
        kept = body.get(SOURCE_ID) if self.keep_ids else None
        if kept:
            try:
                return self._post(dict(body, id=kept), name)
            except glance_exc.HTTPConflict:
                LOG.warning(f"{self.fullname}: image {name} cannot keep the master image's id {kept} (an image "
                            f"with that id exists or existed in this region); it gets a fresh id")
        return self._post(body, name)

    def _post(self, body: dict, name: str) -> str:
        _, record = self.retrying(f"creating image {name}", lambda: self.client.post("/v2/images", data=body),
                                  create=True)
        return record["id"]

    def patch(self, image_id: str, ops: list[dict], operation: str) -> None:
        document = patch_document(ops)
        self.retrying(operation, lambda: self.client.patch(f"/v2/images/{image_id}",
                                                           headers={"Content-Type": PATCH_CONTENT_TYPE},
                                                           data=document))

    def delete(self, image_id: str) -> None:
        self.retrying(f"deleting image {image_id}", lambda: self.client.delete(f"/v2/images/{image_id}"))

    def discard(self, image_id: str, name: str) -> None:
        """Delete a copy whose upload failed; if even that fails, say which id is left over."""
        try:
            self.delete(image_id)
        except glance_exc.HTTPNotFound:
            pass
        except Exception as exc:
            LOG.error(f"{self.fullname}: the failed upload of {name} left image {image_id}, which "
                      f"could not be deleted. Cause: {self.clean_cause(exc)}")

    def new_copy(self, image: Image, marker: str) -> tuple[dict, list[Skipped]]:
        """The creation body of a copy of ``image`` in this region (:func:`create_body`)."""
        if self.publish_at_creation and image.protected:
            LOG.warning(f"{self.fullname}: image {image.name} is left unprotected: this region's Glance refuses "
                        f"to set fields by PATCH (its image schema requires properties)")
        return create_body(image, marker, publish=self.publish_at_creation)

    def finish(self, image_id: str, image: Image) -> None:
        """Publish a verified copy: the PATCH of :func:`finishing_patch`."""
        self.patch(image_id, finishing_patch(image, published=self.publish_at_creation),
                   f"finishing image {image.name}")

    def warn_skipped(self, image: Image, skipped: list[Skipped]) -> None:
        """One WARNING per property of ``image`` that is not sent to Glance."""
        for item in skipped:
            LOG.warning(f"{self.fullname}: property {item.key}={item.value} of image {image.name} "
                        f"is not sent to Glance: {item.reason}")
