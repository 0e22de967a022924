#!/usr/bin/env python3
"""One image to a federation over WAN links: wall time, master egress and client bytes against the
number of regions.

Starts the federation lab (tests/integration/lab: Master plus ``--first`` regions on the first
Keystone and ``--second`` on the second) in WAN mode: every Glance behind a link of
``--rate-mib`` MiB/s each way and ``--latency-ms`` per request (tests/integration/lab/wan.py),
the catalogs pointing at the links, so the client's streams and the Glances' glance-download pulls
all cross them.  Creates one ``--size-mib`` MiB image in Master, then for each number of regions
``n`` of the first Keystone (1..first), with and without the second Keystone's regions, runs each
variant ``--repeat`` times, deleting the copies after each run:

* ``sequential``  -- ``sync.py <regions>`` with ``transfer_method = stream``;
* ``fanout``      -- ``sync.py --parallel <regions>`` with ``transfer_method = stream``
  (``max_children`` = the number of regions): one read of the master fed to every region;
* ``auto``        -- ``sync.py <regions>`` with ``transfer_method = auto`` and ``relay = false``:
  the first Keystone's regions import by glance-download, each from the master;
* ``relay``       -- ``sync.py --parallel <regions>`` with ``transfer_method = auto`` and the
  default ``relay = true``, ``relay_fanout = 1``: each region pulls from the master or a region
  that already holds the image, one pull per source at a time; the second Keystone's first region
  gets a stream and its other regions pull from it.

It measures per run: wall time, the master's egress (bytes out of Master's link: the client's
reads plus the regions' pulls), the client's bytes (bytes into the streamed-to regions' links
from this host: the sum of their links' ``bytes_in``, the streamed copies and the requests; a
glance-download pull goes out of the pulling Glance, not through its own link), and prints a table with the best run of each (variant, regions) and the master egress
per image in units of the image size.

Then, with ``--small-images N`` (default 40), the links' latency set to ``--small-latency-ms``
(default 50): N images of 1 MiB to RegionA alone, with ``max_copies`` 1 and 4, for ``stream`` and
``auto`` (goal: at least 3x faster with 4).

    python bench/federation.py [--first 3] [--second 2] [--size-mib 32] [--rate-mib 40]
                               [--latency-ms 20] [--repeat 1] [--small-images 40] [--small-latency-ms 50]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.lab import start_lab  # noqa: E402
from tests.integration.lab.model import federation  # noqa: E402
from tests.integration.lab.wan import LinkSpec  # noqa: E402

BIN = Path(sys.executable).parent
MIB = 1024 * 1024
PREFIX = "fed-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--first", type=int, default=3)
    parser.add_argument("--second", type=int, default=2)
    parser.add_argument("--size-mib", type=int, default=32)
    parser.add_argument("--rate-mib", type=float, default=40.0)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--small-images", type=int, default=40)
    parser.add_argument("--small-latency-ms", type=float, default=50.0)
    args = parser.parse_args()

    lab = start_lab(glances=federation(args.first, args.second),
                    wan=LinkSpec(args.rate_mib * MIB, args.latency_ms / 1000))
    try:
        run(lab, args)
        if args.small_images:
            small_images(lab, args)
    finally:
        lab.stop()


def run(lab, args) -> None:
    size = args.size_mib * MIB
    master = lab.glance_client("ks1", "Master", endpoint=lab.glance_url("Master"))  # set-up off the links
    image = master.images.create(name=PREFIX + "image", disk_format="raw", container_format="bare",
                                 visibility="public")
    master.images.upload(image["id"], _Random(size), image_size=size)
    first = [region for region in lab.ks1.regions if region != "Master"]
    second = [f"other:{region}" for region in lab.ks2.regions]
    cases = [first[:n] for n in range(1, len(first) + 1)] + [first + second[:m] for m in range(1, len(second) + 1)]
    print(f"image {args.size_mib} MiB; links {args.rate_mib} MiB/s each way, {args.latency_ms} ms; "
          f"regions {first} + {second}")
    print(f"{'variant':<11} {'regions':<44} {'wall s':>7} {'master egress':>14} {'client bytes':>13}")
    results: dict[tuple[str, int], tuple[float, int, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for regions in cases:
            for variant in ("sequential", "fanout", "auto", "relay"):
                for _ in range(args.repeat):
                    wall, egress, client = one_run(lab, Path(tmp), variant, regions)
                    key = (variant, len(regions))
                    best = results.get(key)
                    if best is None or wall < best[0]:
                        results[key] = (wall, egress, client)
                    print(f"{variant:<11} {' '.join(regions):<44} {wall:7.2f} {egress / size:13.2f}x "
                          f"{client / size:12.2f}x")
    print("\nbest runs: wall time (s) / master egress per image (x image size) / client bytes (x size)")
    for (variant, count), (wall, egress, client) in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        print(f"  {count} regions  {variant:<11} {wall:7.2f} s  {egress / size:5.2f}x  {client / size:5.2f}x")
    master.images.delete(image["id"])


def small_images(lab, args) -> None:
    """N images of 1 MiB to RegionA, max_copies 1 and 4, each link with the small latency."""
    for link in lab.links.values():
        link.spec = LinkSpec(link.spec.rate, args.small_latency_ms / 1000)
    master = lab.glance_client("ks1", "Master", endpoint=lab.glance_url("Master"))
    images = []
    for number in range(args.small_images):
        image = master.images.create(name=f"{PREFIX}small{number:03d}", disk_format="raw", container_format="bare",
                                     visibility="public")
        master.images.upload(image["id"], _Random(MIB), image_size=MIB)
        images.append(image["id"])
    print(f"\n{args.small_images} images of 1 MiB to RegionA, links {args.small_latency_ms} ms")
    walls: dict[tuple[str, int], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in ("stream", "auto"):
            for copies in (1, 4):
                wall, _, _ = one_run(lab, Path(tmp), method if method == "auto" else "sequential", ["RegionA"],
                                     max_copies=copies)
                walls[(method, copies)] = wall
                print(f"  {method:<7} max_copies {copies}: {wall:6.2f} s")
            print(f"  {method:<7} max_copies 4 is {walls[(method, 1)] / walls[(method, 4)]:.2f}x faster than 1")
    for image_id in images:
        master.images.delete(image_id)


def one_run(lab, tmp: Path, variant: str, regions: list[str], max_copies: int = 4) -> tuple[float, int, int]:
    config = tmp / "glancesync.conf"
    method = "auto" if variant in ("auto", "relay") else "stream"
    relay = {"relay": "true" if variant == "relay" else "false"}
    condition = f"image.name.startswith('{PREFIX}')"
    copies = {"max_copies": str(max_copies)}
    lab.write_glancesync_conf(config, main={"lock_dir": str(tmp / "locks"), "max_children": str(len(regions)),
                                            "images_dir": str(tmp / "none")},
                              master={"metadata_condition": condition, "transfer_method": method, **copies, **relay},
                              target={"metadata_condition": condition, **copies, **relay})
    for link in lab.links.values():
        link.reset_counts()
    command = [str(BIN / "sync.py"), *(["--parallel"] if variant in ("fanout", "relay") else []), *regions]
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "GLANCESYNC_"))}
    environ["GLANCESYNC_CONFIG"] = str(config)
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=environ, cwd=tmp, timeout=3600)
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"{variant} {regions} failed:\n{done.stderr[-3000:]}")
    egress = lab.links["Master"].bytes_out
    client = sum(link.bytes_in for region, link in lab.links.items() if region != "Master")
    remove_copies(lab, regions)
    return wall, egress, client


def remove_copies(lab, regions: list[str]) -> None:
    for argument in regions:
        region = argument.split(":")[-1]
        keystone = lab.glances[region].keystone
        client = lab.glance_client(keystone, region, endpoint=lab.glance_url(region))
        for image in client.images.list():
            if image["name"] and image["name"].startswith(PREFIX):
                client.images.delete(image["id"])


class _Random:
    """``size`` random bytes, read in pieces (no 1 GiB buffer for a large image)."""

    def __init__(self, size: int):
        self.left = size

    def read(self, count: int = MIB) -> bytes:
        count = min(count if count > 0 else MIB, self.left)
        self.left -= count
        return os.urandom(count)


if __name__ == "__main__":
    main()
