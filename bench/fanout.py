#!/usr/bin/env python3
"""One image to RegionA and other:RegionB: plain copy, sequential stream, --parallel fan-out, auto.

Creates one ``--size-mib`` MiB image (default 256) in the lab's Master region, then ``--repeat``
times (default 3), interleaved, runs each variant and deletes the copies after it:

* ``plain``      -- the reference: python-glanceclient alone copies the image to RegionA once
  (``images.data`` of Master piped into ``images.upload`` of RegionA);
* ``sequential`` -- ``sync.py RegionA other:RegionB`` with ``transfer_method = stream``: one
  region after the other, each reading the master image;
* ``fanout``     -- ``sync.py --parallel RegionA other:RegionB`` with ``transfer_method = stream``:
  both regions at once, fed from one read of the master image;
* ``auto``       -- ``sync.py RegionA other:RegionB`` with the default ``transfer_method = auto``:
  RegionA's Glance imports the image itself (glance-download), RegionB gets it streamed.

The master reads per image are the ``GET /v2/images/<id>/file`` requests in the master Glance's
own request log (uWSGI's, in the lab's state directory): server-side evidence, and no relay in
between to spend CPU (a counting proxy in this process cost ~0.25 CPU s per 256 MiB read, which
a run bound by the 2 cores pays in wall time).  The bytes sent by the client come from sync.py's
summary lines (its log files under ``--parallel``).  Under ``auto`` the master's reads include
RegionA's own glance-download pull (Glance reading the master; no client bytes).  Prints every
run, the best wall time of each variant, its ratio to the best plain copy, the master reads and
the bytes sent.  Goals: fanout <= 1.3 x plain with 1 master read; auto sends 0 bytes to RegionA.

Where the time goes: each run also prints the CPU seconds spent by each lab server (a uWSGI
master and its workers, from /proc), by the client (sync.py, or this process for ``plain``) and
by the whole machine (/proc/stat).  A run is bound by the
machine's cores when ``machine CPU / cores`` comes close to its wall time: then no client-side
change can make it faster, only less CPU per byte somewhere.

sync.py runs with its bytecode cached, as a pip-installed package has it (``--bytecode none``:
compiled from source at every start; see bench/bytecode_modes.py).

    python bench/fanout.py [--size-mib 256] [--repeat 3] [--bytecode cached|none]
"""

from __future__ import annotations

import argparse
import io
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import bytecode_modes  # noqa: E402  (bench/, this script's directory, is on sys.path)
from lab_images import TARGET_REGIONS, lab_clients, remove_images  # noqa: E402
from tests.integration.lab import Lab, start_lab  # noqa: E402
from tests.integration.lab.processes import descendants  # noqa: E402

BIN = Path(sys.executable).parent
MIB = 1024 * 1024
SUMMARY = re.compile(r"(?:^|\n)(?:INFO:)?(\S+): Summary: \d+ images uploaded \([^)]*\), (\d+) bytes sent in")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--bytecode", choices=bytecode_modes.MODES, default="cached",
                        help="run sync.py with its .pyc files cached (as installed; default) "
                             "or compiling from source at every start")
    args = parser.parse_args()

    state = os.environ.get("GLANCESYNC_LAB_STATE")
    lab = Lab.load(state) if state else start_lab()
    prefix = f"fan{uuid.uuid4().hex[:6]}-"
    clients = lab_clients(lab)
    try:
        with tempfile.TemporaryDirectory(prefix="glancesync-bench-") as tmp:
            name = f"{prefix}img"
            data = os.urandom(args.size_mib * MIB)
            image = clients["Master"].images.create(name=name, disk_format="raw", container_format="bare",
                                                    visibility="public")
            clients["Master"].images.upload(image["id"], io.BytesIO(data), image_size=len(data))
            del data
            master = clients["Master"].images.get(image["id"])
            configs = {}
            for method in ("stream", "auto"):
                config = Path(tmp) / f"glancesync-{method}.conf"
                condition = f"image.name == '{name}'"
                lab.write_glancesync_conf(
                    config, main={"max_children": "2", "lock_dir": str(Path(tmp) / "locks")},
                    master={"metadata_condition": condition, "transfer_method": method},
                    target={"metadata_condition": condition, "transfer_method": "stream"})
                configs[method] = config
            print(bytecode_modes.use_bytecode(args.bytecode, Path(tmp)))
            print(f"one {args.size_mib} MiB image to RegionA and other:RegionB, best of {args.repeat}, "
                  f"interleaved; master reads from the master Glance's request log")
            variants = {
                "plain": lambda: plain_copy(lab, master["id"], clients),
                "sequential": lambda: sync(configs["stream"], tmp, []),
                "fanout": lambda: sync(configs["stream"], tmp, ["--parallel"]),
                "auto": lambda: sync(configs["auto"], tmp, []),
            }
            results: dict[str, list[tuple[float, int, dict]]] = {v: [] for v in variants}
            for run in range(1, args.repeat + 1):
                for variant, call in variants.items():
                    before = master_reads(lab, master["id"])
                    cpu_before = cpu_snapshot(lab)
                    started = time.perf_counter()
                    sent = call()
                    elapsed = time.perf_counter() - started
                    cpu = cpu_spent(cpu_before, cpu_snapshot(lab), variant)
                    reads = master_reads(lab, master["id"]) - before
                    check(clients, name, master, 1 if variant == "plain" else 2)
                    results[variant].append((elapsed, reads, sent))
                    print(f"  run {run} {variant:<10} {elapsed:7.2f} s  master reads {reads}  bytes sent by the "
                          f"client {sent}", flush=True)
                    print(f"      CPU s: {describe_cpu(cpu, elapsed)}", flush=True)
                    remove_images(clients, prefix, TARGET_REGIONS)
            reference = min(t for t, _, _ in results["plain"])
            print("summary (best wall time; ratio to the best plain copy; master reads; client bytes per region)")
            for variant, runs in results.items():
                best = min(runs, key=lambda r: r[0])
                print(f"  {variant:<10} {best[0]:7.2f} s  x{best[0] / reference:5.2f}  master reads "
                      f"{best[1]}  sent {best[2]}")
            print("goals: fanout <= 1.3 x plain and 1 master read; auto sends 0 bytes to RegionA")
    finally:
        remove_images(clients, prefix)
        if not state:
            lab.stop()


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_snapshot(lab) -> dict[str, float]:
    """CPU seconds so far: each lab server with its workers, this process, its finished
    children (sync.py), and the whole machine's busy time (/proc/stat, all but idle and iowait)."""
    snapshot = {}
    for server in lab.servers:
        total = 0.0
        for pid in (server.pid, *descendants(server.pid)):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
        snapshot[server.name] = total
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    snapshot["this process"] = own.ru_utime + own.ru_stime
    snapshot["sync.py"] = children.ru_utime + children.ru_stime
    cpu = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(v) for v in cpu]
    snapshot["machine"] = (sum(ticks[:8]) - ticks[3] - ticks[4]) / CLOCK_TICKS
    return snapshot


def cpu_spent(before: dict[str, float], after: dict[str, float], variant: str) -> dict[str, float]:
    spent = {name: after[name] - before[name] for name in after}
    if variant == "plain":  # the plain client runs in this process
        spent["client (plain)"] = spent.pop("this process")
        spent.pop("sync.py")
    return spent  # otherwise "this process" is ~0: it only waits for sync.py


def describe_cpu(spent: dict[str, float], elapsed: float) -> str:
    machine = spent.pop("machine")
    parts = [f"{name} {seconds:.2f}" for name, seconds in spent.items() if seconds >= 0.005]
    cores = os.cpu_count() or 1
    return (", ".join(parts) + f"; machine {machine:.2f} = {machine / elapsed:.2f} of {cores} cores busy "
            f"(bound: {machine / cores:.2f} s)")


def master_reads(lab, image_id: str) -> int:
    """How many times the master Glance has served the image's data (its uWSGI request log)."""
    log = lab.state_dir / lab.glances["Master"].name / "uwsgi.log"
    return log.read_text(errors="replace").count(f"GET /v2/images/{image_id}/file ")


def plain_copy(lab, image_id: str, clients: dict) -> dict:
    """glanceclient alone: the master's data into a new RegionA image."""
    source = clients["Master"]
    record = source.images.get(image_id)
    target = clients["RegionA"]
    copy = target.images.create(name=record["name"], disk_format="raw", container_format="bare",
                                visibility="public")
    target.images.upload(copy["id"], _FileLike(source.images.data(image_id)), image_size=record["size"])
    return {"RegionA": record["size"]}


class _FileLike:
    """``read(n)`` over the chunks of a download (glanceclient uploads read a file-like body)."""

    def __init__(self, chunks):
        self.chunks, self.buffer = iter(chunks), b""

    def read(self, size: int = -1) -> bytes:
        while len(self.buffer) < size or size < 0:
            piece = next(self.chunks, None)
            if piece is None:
                break
            self.buffer += piece
        if size < 0:
            out, self.buffer = self.buffer, b""
        else:
            out, self.buffer = self.buffer[:size], self.buffer[size:]
        return out


def sync(config: Path, cwd: str, extra: list[str]) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "GLANCESYNC_"))}
    env["GLANCESYNC_CONFIG"] = str(config)
    env.update(bytecode_modes.ENV)
    for old in Path(cwd).glob("sync_*/*.txt"):
        old.unlink()
    done = subprocess.run([BIN / "sync.py", *extra, "RegionA", "other:RegionB"], env=env, cwd=cwd,
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"sync.py {' '.join(extra)} failed:\n{done.stdout}\n{done.stderr}")
    text = done.stderr + "".join(p.read_text() for p in Path(cwd).glob("sync_*/*.txt"))
    return {region: int(sent) for region, sent in SUMMARY.findall(text)}


def check(clients: dict, name: str, master: dict, regions: int) -> None:
    copies = [i for region in ("RegionA", "RegionB") for i in clients[region].images.list() if i["name"] == name]
    good = [c for c in copies if c["status"] == "active" and c["checksum"] == master["checksum"]
            and c["os_hash_value"] == master["os_hash_value"]]
    if len(good) != regions or len(copies) != regions:
        sys.exit(f"expected {regions} verified copies, found {[(c['status'], c['checksum']) for c in copies]}")


if __name__ == "__main__":
    main()
