#!/usr/bin/env python3
"""Sequential against ``--parallel`` sync of the same images to two lab regions, in one run.

Creates ``--images`` images of ``--size-mib`` MiB in the lab's Master region, then, ``--repeat``
times each, synchronises them to ``RegionA`` and ``other:RegionB`` (the second federation, behind
its own Keystone), both streamed (``transfer_method = stream``), with plain ``sync.py`` (one
region after the other) and with ``sync.py --parallel`` (``max_children = 2``), deleting the copies between runs.  Prints the wall times, the
best of each and the ratio sequential / parallel.  Every run is checked: both regions end with
every image ``ok``.

Starts its own lab with the project's harness (tests/integration/lab), or uses a running one when
``GLANCESYNC_LAB_STATE`` names its state directory.  Run from the repository root:

    python bench/parallel.py [--images 4] [--size-mib 64] [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lab_images import TARGET_REGIONS, lab_clients, remove_images  # noqa: E402  (bench/ is on sys.path)
from tests.integration.lab import Lab, start_lab  # noqa: E402

BIN = Path(sys.executable).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    state = os.environ.get("GLANCESYNC_LAB_STATE")
    lab = Lab.load(state) if state else start_lab()
    prefix = f"bench{uuid.uuid4().hex[:6]}-"
    clients = lab_clients(lab)
    try:
        with tempfile.TemporaryDirectory(prefix="glancesync-bench-") as tmp:
            config = Path(tmp) / "glancesync.conf"
            condition = f"image.name.startswith('{prefix}')"
            lab.write_glancesync_conf(config, main={"max_children": "2", "images_dir": str(Path(tmp) / "none")},
                                      master={"metadata_condition": condition, "transfer_method": "stream"},
                                      target={"metadata_condition": condition})
            for i in range(args.images):
                data = os.urandom(args.size_mib * 1024 * 1024)
                image = clients["Master"].images.create(name=f"{prefix}{i}", disk_format="raw",
                                                        container_format="bare", visibility="public")
                clients["Master"].images.upload(image["id"], io.BytesIO(data), image_size=len(data))
            env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "GLANCESYNC_"))}
            env["GLANCESYNC_CONFIG"] = str(config)
            total_mib = args.images * args.size_mib
            print(f"{args.images} images x {args.size_mib} MiB to RegionA and other:RegionB "
                  f"({2 * total_mib} MiB per run), streamed from Master")
            times: dict[str, list[float]] = {"sequential": [], "parallel": []}
            for _ in range(args.repeat):
                for mode, extra in (("sequential", []), ("parallel", ["--parallel"])):
                    started = time.perf_counter()
                    done = subprocess.run([BIN / "sync.py", *extra, "RegionA", "other:RegionB"], env=env,
                                          cwd=tmp, capture_output=True, text=True)
                    elapsed = time.perf_counter() - started
                    if done.returncode != 0:
                        sys.exit(f"{mode} sync failed:\n{done.stdout}\n{done.stderr}")
                    check(env, tmp, args.images)
                    times[mode].append(elapsed)
                    print(f"  {mode:<10} {elapsed:7.2f} s  ({2 * total_mib / elapsed:6.1f} MiB/s)", flush=True)
                    remove_images(clients, prefix, TARGET_REGIONS)
            best_sequential, best_parallel = min(times["sequential"]), min(times["parallel"])
            print(f"best sequential {best_sequential:.2f} s, best parallel {best_parallel:.2f} s, "
                  f"ratio sequential/parallel {best_sequential / best_parallel:.2f}")
    finally:
        remove_images(clients, prefix)
        if not state:
            lab.stop()


def check(env: dict, cwd: str, images: int) -> None:
    done = subprocess.run([BIN / "sync.py", "--show-status", "RegionA", "other:RegionB"], env=env, cwd=cwd,
                          capture_output=True, text=True)
    statuses = [line.split(",")[0] for line in done.stdout.split() if line]
    if done.returncode != 0 or statuses != ["ok"] * (2 * images):
        sys.exit(f"regions not in sync after the run: {done.stdout}\n{done.stderr}")


if __name__ == "__main__":
    main()
