"""The lab's three Glances as glanceclient clients, and removing a bench's images from them.

Shared by the benches that sync to the lab's RegionA and other:RegionB (bench/fanout.py,
bench/parallel.py): each names its images with a prefix of its own and removes them by it,
between runs (the copies) and at the end (the master images too)."""

from __future__ import annotations

# region -> the lab Keystone whose catalogue lists its Glance
LAB_REGIONS = {"Master": "ks1", "RegionA": "ks1", "RegionB": "ks2"}
TARGET_REGIONS = ("RegionA", "RegionB")  # where the benches' syncs put their copies


def lab_clients(lab) -> dict:
    """A glanceclient per lab region (the admin of the Keystone that serves it)."""
    return {region: lab.glance_client(keystone, region) for region, keystone in LAB_REGIONS.items()}


def remove_images(clients: dict, prefix: str, regions=None) -> None:
    """Delete every image whose name starts with ``prefix`` from ``regions`` (default: all)."""
    for region in regions or clients:
        for image in clients[region].images.list():
            if image["name"] and image["name"].startswith(prefix):
                clients[region].images.delete(image["id"])
