#!/usr/bin/env python3
"""How ``sync.py --show-status`` scales with the catalogue size, on the file-backed mock.

For each size N (default 1,000 / 5,000 / 10,000 master images) it writes a mock store with a
master region of N images and 20 regions holding copies of them (mostly in sync, with some
metadata drift, some missing and some conflicting images), then times ``sync.py --show-status``
over all 20 regions (best of ``--repeat`` runs, wall clock of the whole process, so interpreter
start-up is included).  It prints the time per size and the time per image-region pair; linear
growth shows as a flat per-pair figure.  Reference in the same run: the time of
``python -c pass`` with the same interpreter (the fixed cost of any CLI run).

    python bench/status_scaling.py [--sizes 1000 5000 10000] [--regions 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
CONFIG = """[main]
master_region = Master

[master]
user = bench
password = bench
keystone_url = http://keystone.invalid:5000/v3
tenant = bench
metadata_set = nid, type
rename = conflict
"""


def write_store(directory: Path, images: int, regions: int) -> None:
    def row(region: str, index: int, image_id: str, checksum: str, props: str) -> str:
        size = 1_000_000 + index * 10
        return f'{region},image{index:06d},{image_id},active,{size},{checksum},benchid,True,"{props}"\r\n'

    kinds = ["{'type': 'baseimages', 'nid': '1'}", "{'type': 'fiware:data', 'nid': '2'}", "{'type': 'other'}"]
    with open(directory / "backup_Master.csv", "w", newline="") as out:
        for i in range(images):
            out.write(row("Master", i, f"m{i}", f"c{i}", kinds[i % 3]))
    for r in range(regions):
        name = f"Region{r:02d}"
        with open(directory / f"backup_{name}.csv", "w", newline="") as out:
            for i in range(images):
                if i % 50 == r % 50:
                    continue                                    # missing: pending_upload
                checksum = "conflict" if i % 97 == 0 else f"c{i}"  # pending_rename
                props = kinds[(i + 1) % 3] if i % 31 == 0 else kinds[i % 3]  # drift: pending_metadata
                out.write(row(name, i, f"r{r}-{i}", checksum, props))


def best_time(command: list[str], env: dict, repeat: int) -> tuple[float, str]:
    best, output = float("inf"), ""
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True)  # bytes: keep \r\n
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr.decode()}")
        best, output = min(best, elapsed), done.stdout.decode()
    return best, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--regions", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    baseline, _ = best_time([sys.executable, "-c", "pass"], dict(os.environ), args.repeat)
    print(f"interpreter start-up (python -c pass): {baseline:.3f} s")
    print(f"{'images':>8} {'regions':>8} {'pairs':>10} {'seconds':>9} {'us/pair':>9} {'lines':>9}")
    for size in args.sizes:
        with tempfile.TemporaryDirectory(prefix="glancesync-bench-") as tmp:
            store = Path(tmp) / "store"
            store.mkdir()
            write_store(store, size, args.regions)
            config = Path(tmp) / "glancesync.conf"
            config.write_text(CONFIG)
            env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "GLANCESYNC_"))}
            env.update(GLANCESYNC_MOCKPERSISTENT_PATH=str(store), GLANCESYNC_CONFIG=str(config))
            seconds, output = best_time([str(BIN / "sync.py"), "--show-status"], env, args.repeat)
            pairs = size * args.regions
            lines = output.count("\r\n")
            if lines != pairs:
                sys.exit(f"expected {pairs} status lines, got {lines}")
            print(f"{size:>8} {args.regions:>8} {pairs:>10} {seconds:>9.3f} {seconds / pairs * 1e6:>9.2f} {lines:>9}")


if __name__ == "__main__":
    main()
