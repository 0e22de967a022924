"""A region's Glance image cache (README "Stores and edge caches"): what it holds and queues
(``GET /v2/cache``) and queueing an image (``PUT /v2/cache/<id>``), image API 2.14+."""

from __future__ import annotations

from ..base import CacheState
from .library_errors import glance_exc
from .region_glance import RegionGlance


def cache_state(glance: RegionGlance) -> CacheState | None:
    """None when the Glance answers that it has no cache API (404), or that this credential may
    not use it (403), or any other HTTP error: precache is an optimisation, never a failure."""
    try:
        _, body = glance.retrying("reading the image cache", lambda: glance.client.get("/v2/cache"))
    except glance_exc.HTTPException:
        return None
    body = body or {}
    cached = frozenset(str(entry.get("image_id")) for entry in body.get("cached_images") or () if entry.get("image_id"))
    return CacheState(cached, frozenset(str(image_id) for image_id in body.get("queued_images") or ()))


def queue_for_cache(glance: RegionGlance, image_id: str) -> None:
    glance.retrying(f"queueing image {image_id} for the cache", lambda: glance.client.put(f"/v2/cache/{image_id}"))
