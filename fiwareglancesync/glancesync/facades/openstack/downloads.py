"""A download: the image data streamed, resumed with ``Range: bytes=<n>-`` from the byte reached
when the stream breaks transiently (README "Retries and timeouts"), so that its consumer sees
one continuous stream."""

from __future__ import annotations

import re
from typing import Iterator

from ...errors import GlanceSyncError, ImageNotFound, TransferError
from .http import skip
from .library_errors import client_errors, glance_exc
from .region_glance import RegionGlance
from .retry import Retries, transient_cause


def download(glance: RegionGlance, image_id: str, prefix: str) -> Iterator[bytes]:
    """The data of image ``image_id`` in chunks, streamed (nothing is buffered).

    The request is made here, so a missing image raises ImageNotFound at once; failures
    while streaming raise TransferError (``prefix`` + the cause).  A stream that breaks
    transiently is resumed from the byte reached, at most ``glance.retries`` times."""
    fullname = glance.fullname
    with glance.translated(prefix, error=TransferError):
        try:
            response, body = glance.retrying(f"downloading image {image_id}",
                                             lambda: glance.client.get(f"/v2/images/{image_id}/file"))
        except glance_exc.HTTPNotFound:
            raise ImageNotFound(f"{prefix}no image with id {image_id}", fullname) from None
    if response.status_code == 204 or body is None:  # an image without data
        response.close()
        return iter(())
    return _stream(glance, image_id, response, body, prefix)


def _stream(glance: RegionGlance, image_id: str, response, body, prefix: str) -> Iterator[bytes]:
    budget = Retries(glance.retries)
    offset = 0  # bytes delivered to the consumer
    try:
        while True:
            try:
                for chunk in body:
                    offset += len(chunk)
                    yield chunk
                return
            except client_errors() as exc:
                error: BaseException = exc
            response.close()
            # Resume from `offset`; a resume request that fails transiently counts as a retry too.
            while True:
                cause = transient_cause(error)
                if not budget.wait(cause, f"{glance.fullname}: {cause} while downloading image {image_id}, after "
                                          f"{offset} bytes; the download resumes from there: "):
                    with glance.translated(prefix, error=TransferError):
                        raise error
                try:
                    response, body = _resume(glance.client, image_id, offset)
                    break
                except client_errors() as exc:
                    error = exc
                except GlanceSyncError as exc:
                    raise TransferError(prefix + glance.clean_cause(exc), glance.fullname) from None
    finally:
        response.close()  # also when the consumer stops early (failed upload)


def _resume(client, image_id: str, offset: int):
    """(response, body) of the rest of the image data from byte ``offset``."""
    response, body = client.get_range(f"/v2/images/{image_id}/file", offset)
    if response.status_code == 206:
        content_range = response.headers.get("Content-Range", "")
        match = re.fullmatch(r"bytes (\d+)-\d+/(?:\d+|\*)", content_range.strip())
        if match is None or int(match.group(1)) != offset:
            response.close()
            raise TransferError(f"asked for the data from byte {offset}, the region sent "
                                f"Content-Range {content_range or 'none'}")
        return response, body
    if response.status_code == 200 and body is not None:  # Range ignored: everything again
        return response, skip(body, offset)
    response.close()
    raise TransferError(f"asked for the data from byte {offset}, the region answered HTTP "
                        f"{response.status_code} without data")
