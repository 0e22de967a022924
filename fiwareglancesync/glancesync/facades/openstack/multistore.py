"""The stores of a multi-store region (README "Stores and edge caches"): which stores its Glance
has, and copies of an image's data to the stores it lacks with Glance's ``copy-image`` import
(server-side: no byte through this client), followed until Glance is done with them."""

from __future__ import annotations

import time

from . import retry
from .library_errors import glance_exc
from .region_glance import RegionGlance

COPY_POLL_FIRST = 0.25  # seconds before the first look at a copy; each next wait 1.5 times longer...
COPY_POLL_MAX = 2.0  # ...up to this


def region_stores(glance: RegionGlance) -> tuple[str, ...]:
    """``GET /v2/info/stores``: the store ids, the default first; empty for a Glance that is not
    multi-store (it answers that call with an HTTP error)."""
    try:
        _, body = glance.retrying("reading the stores", lambda: glance.client.get("/v2/info/stores"))
    except glance_exc.HTTPException:
        return ()
    stores = [store for store in (body or {}).get("stores") or () if store.get("id")]
    stores.sort(key=lambda store: str(store.get("default", "")).lower() != "true")
    return tuple(str(store["id"]) for store in stores)


def stores_of(record: dict) -> set[str]:
    return {store for store in (record.get("stores") or "").split(",") if store}


def copy_to_stores(glance: RegionGlance, image_id: str, name: str, wanted: frozenset[str],
                   timeout: float) -> list[str]:
    """Copy the image to the stores of ``wanted`` it is not in; the stores still missing once
    Glance is done (or ``timeout`` s have passed), sorted."""
    record = glance.read(image_id)
    missing = sorted(wanted - stores_of(record))
    if not missing:
        return []
    request = {"method": {"name": "copy-image"}, "stores": missing, "all_stores_must_succeed": False}
    glance.retrying(f"copying image {name} to stores {', '.join(missing)}",
                    lambda: glance.client.post(f"/v2/images/{image_id}/import", data=request), create=True)
    deadline = time.monotonic() + timeout
    delay = COPY_POLL_FIRST
    while True:
        record = glance.read(image_id)
        busy = {store for store in (record.get("os_glance_importing_to_stores") or "").split(",") if store}
        if not busy & set(missing) and not record.get("os_glance_import_task") or time.monotonic() >= deadline:
            return sorted(set(missing) - stores_of(record))
        retry.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, COPY_POLL_MAX)
