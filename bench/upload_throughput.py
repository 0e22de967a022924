#!/usr/bin/env python3
"""Upload throughput and memory of the OpenStack facade, against a real Glance (the lab).

Throughput: the same file (default 512 MiB of random data) is uploaded to one region's Glance
(:data:`UPLOAD_REGION`, RegionA unless ``GLANCESYNC_BENCH_UPLOAD_REGION`` says otherwise: the same
Glance for every variant) ``--runs`` times by each variant, interleaved (a, b, a, b, ...) so that load from other
processes on the machine hits both alike:

* ``plain``  -- python-glanceclient alone: ``images.create`` + ``images.upload(id, file,
  image_size=n)`` (glanceclient reads the file in 1 MiB chunks);
* ``facade`` -- ``OpenStackFacade.upload_image`` with a ``FileSource``: the same chunked upload
  plus MD5/SHA-512 hashing, verification against the master's hashes and the post-upload check.

It prints every run, the median and best MiB/s per variant, and each variant's ratio to plain,
of the medians and of the bests (goals: facade >= 0.9; syncpy, the whole process, >= 0.95).
Each uploaded image is deleted right after its run.

Memory: a child process uploads a 64 MiB and then (separately) a 1 GiB image through the facade;
the parent reads each child's peak RSS (``ru_maxrss`` from ``wait4``).  A child that only
imports the libraries and authenticates is measured too, as the baseline.  Goal: flat (the
1 GiB peak equals the 64 MiB peak) and below 150 MB.

Which cloud: with ``OS_AUTH_URL`` (and ``OS_USERNAME``, ``OS_PASSWORD``, ``OS_PROJECT_NAME``,
optional ``OS_USER_DOMAIN_NAME``/``OS_PROJECT_DOMAIN_NAME``, ``OS_REGION_NAME`` = the master
region, where syncpy's source image is made, default Master) in the environment it uses that cloud, e.g. a lab started with
``eval "$(python -m tests.integration.lab start)"``; without them it starts the project's lab
itself (tests/integration/lab) and stops it at the end.

* ``syncpy`` -- the whole ``sync.py`` process copying the image from the master region to
  UPLOAD_REGION (its data read from ``images_dir``): start-up, authentication and listings included.  Its client CPU is
  the sync.py process's (``RUSAGE_CHILDREN``); the upload time sync.py logs is printed beside it.

  Bytecode (``--bytecode cached|none``, see bench/bytecode_modes.py): ``cached`` (the default)
  runs sync.py as an installed package runs, reading .pyc files written before the timing;
  ``none`` compiles its modules at every start (~0.05 CPU-s).  The output says which.

Adding a variant: write a function
``variant(cloud, path, size) -> None`` that uploads ``path`` once and cleans up after itself,
and register it in :data:`VARIANTS`; ``--variants`` selects which ones run.

    python bench/upload_throughput.py [--size-mib 512] [--runs 3] [--variants plain facade syncpy]
                                      [--bytecode cached|none] [--rss-sizes-mib 64 1024] [--no-rss]
                                      [--workdir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the package and tests.integration.lab, run from a checkout

import bytecode_modes  # noqa: E402  (bench/, this script's directory, is on sys.path)

MIB = 1024 * 1024


@dataclass(frozen=True)
class Cloud:
    """A credential and the region uploads go to."""

    auth_url: str
    username: str
    password: str
    project_name: str
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    region: str = "Master"

    @classmethod
    def from_env(cls, environ) -> "Cloud | None":
        if not environ.get("OS_AUTH_URL"):
            return None
        return cls(auth_url=environ["OS_AUTH_URL"], username=environ["OS_USERNAME"],
                   password=environ["OS_PASSWORD"],
                   project_name=environ.get("OS_PROJECT_NAME") or environ["OS_TENANT_NAME"],
                   user_domain_name=environ.get("OS_USER_DOMAIN_NAME", "Default"),
                   project_domain_name=environ.get("OS_PROJECT_DOMAIN_NAME", "Default"),
                   region=environ.get("OS_REGION_NAME", "Master"))

    def env(self) -> dict[str, str]:
        return {"OS_AUTH_URL": self.auth_url, "OS_USERNAME": self.username, "OS_PASSWORD": self.password,
                "OS_PROJECT_NAME": self.project_name, "OS_USER_DOMAIN_NAME": self.user_domain_name,
                "OS_PROJECT_DOMAIN_NAME": self.project_domain_name, "OS_REGION_NAME": self.region}

    def glance_clients(self, *regions: str) -> list:
        """A python-glanceclient for each region, on one new Keystone session of this credential."""
        from keystoneauth1 import session
        from keystoneauth1.identity import v3
        from glanceclient import client

        auth = v3.Password(auth_url=self.auth_url, username=self.username, password=self.password,
                           project_name=self.project_name, user_domain_name=self.user_domain_name,
                           project_domain_name=self.project_domain_name)
        sess = session.Session(auth=auth)
        return [client.Client("2", session=sess, region_name=region, interface="public") for region in regions]

    def target(self):
        from fiwareglancesync.glancesync.config import Target

        return Target(name="master", user=self.username, password=self.password, keystone_url=self.auth_url,
                      tenant=self.project_name, user_domain_name=self.user_domain_name,
                      project_domain_name=self.project_domain_name)


# ------------------------------------------------------------------------------ the variants
# Every variant uploads to this region's Glance, so that they compare the clients, not two Glances
# (until 2026-12-02 plain and facade uploaded to the master's Glance and syncpy to RegionA's).
UPLOAD_REGION = os.environ.get("GLANCESYNC_BENCH_UPLOAD_REGION", "RegionA")


def plain_glanceclient(cloud: Cloud, path: Path, size: int) -> None:
    [glance] = cloud.glance_clients(UPLOAD_REGION)
    image = glance.images.create(name="bench-plain", disk_format="raw", container_format="bare")
    try:
        with open(path, "rb") as stream:
            glance.images.upload(image.id, stream, image_size=size)
    finally:
        glance.images.delete(image.id)


def facade_upload(cloud: Cloud, path: Path, size: int, hashes: dict | None = None) -> None:
    from fiwareglancesync.glancesync.facades.openstack import OpenStackFacade
    from fiwareglancesync.glancesync.image import Image
    from fiwareglancesync.glancesync.region import Region
    from fiwareglancesync.glancesync.sources import FileSource

    hashes = hashes or file_hashes(path)
    facade = OpenStackFacade(cloud.target())
    region = Region("master", UPLOAD_REGION)
    image = Image(name="bench-facade", id="", region=UPLOAD_REGION, is_public=False, size=size,
                  checksum=hashes["md5"], os_hash_algo="sha512", os_hash_value=hashes["sha512"],
                  disk_format="raw", container_format="bare")
    uploaded = facade.upload_image(region, image, FileSource(str(path)))
    facade.delete_image(region, uploaded.image_id)


LAST_SYNC_UPLOAD: list[float] = []  # seconds sync.py reported for its upload, per syncpy run


def syncpy_baseline_upload(cloud: Cloud, path: Path, size: int) -> None:
    """``syncpy`` with the package of another checkout (``GLANCESYNC_BENCH_BASELINE``, e.g. a
    ``git worktree`` of the commit before a change) first on PYTHONPATH: before/after, interleaved."""
    baseline = os.environ.get("GLANCESYNC_BENCH_BASELINE")
    if not baseline:
        raise SystemExit("syncpy-baseline needs GLANCESYNC_BENCH_BASELINE=<checkout of the baseline>")
    syncpy_upload(cloud, path, size, pythonpath=baseline)


@dataclass
class SyncMaster:
    """The master image the syncpy runs copy, made once per bench run (see :func:`sync_master`)."""

    name: str
    images_dir: Path  # holds the data file, named by the master image's id
    master: object  # glanceclient of the master region
    target: object  # glanceclient of UPLOAD_REGION


SYNC_MASTERS: dict[Path, SyncMaster] = {}  # by data file


def sync_master(cloud: Cloud, path: Path, size: int) -> SyncMaster:
    """The master image of ``path``'s data, uploaded (plainly) the first time it is asked for and
    kept until :func:`remove_sync_masters`.  Made once, not before every syncpy run: with the
    master uploaded right before each timed run, the receiving Glance spent 1.1-1.5 system
    CPU-s on syncpy's copy against 0.5-0.65 on the same copy made by the facade in a fresh
    process (most of it copying into the page cache: ``copy_folio_from_iter_atomic``, 7.5% of
    the machine's samples against 1.2%), and syncpy's own upload ran at ~100 MiB/s; with the
    master made once, at 106-125.  The likely cause, on this VM: the master's upload took the
    page-cache pages the previous run's deleted copy had freed, leaving syncpy's copy pages
    the guest had not touched lately."""
    if path in SYNC_MASTERS:
        return SYNC_MASTERS[path]
    import uuid

    master, target = cloud.glance_clients(cloud.region, UPLOAD_REGION)
    name = f"bench-syncpy-{uuid.uuid4().hex[:8]}"
    image = master.images.create(name=name, disk_format="raw", container_format="bare", visibility="public")
    fixture = SYNC_MASTERS[path] = SyncMaster(name, path.parent / f"images-{name}", master, target)
    with open(path, "rb") as stream:
        master.images.upload(image.id, stream, image_size=size)
    fixture.images_dir.mkdir()
    os.link(path, fixture.images_dir / image.id)
    return fixture


def remove_sync_masters() -> None:
    for fixture in SYNC_MASTERS.values():
        shutil.rmtree(fixture.images_dir, ignore_errors=True)
        for glance in (fixture.target, fixture.master):
            for listed in glance.images.list(filters={"name": fixture.name}):
                glance.images.delete(listed["id"])
    SYNC_MASTERS.clear()


def syncpy_upload(cloud: Cloud, path: Path, size: int, pythonpath: str | None = None) -> None:
    """The whole ``sync.py`` process copying one image from the master region to UPLOAD_REGION,
    its data read from ``images_dir/<master id>`` (``path``).  Not timed: the master image
    (:func:`sync_master`) and deleting the copy afterwards.  Timed: the sync.py run, start-up,
    authentication, listings and the verified upload included."""
    import re

    fixture = sync_master(cloud, path, size)
    name = fixture.name
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "GLANCESYNC_"))}
        env.update(cloud.env())
        env.update(bytecode_modes.ENV)
        if pythonpath:
            env["PYTHONPATH"] = pythonpath
        # stream: this measures the client's data path (UPLOAD_REGION's Glance could import by itself)
        command = [str(Path(sys.executable).parent / "sync.py"), "--config", f"main.images_dir={fixture.images_dir}",
                   "master.transfer_method=stream", f"master.metadata_condition=image.name == '{name}'", "--", UPLOAD_REGION]
        started = time.perf_counter()
        TIMED.append(started)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        TIMED.append(time.perf_counter())
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        SYNC_CPU.append(after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime)
        if done.returncode != 0:
            raise SystemExit(f"sync.py failed:\n{done.stderr}")
        sent = re.search(rf"{name}: (\d+) bytes sent from file .* in ([0-9.]+) s", done.stderr)
        if not sent or int(sent.group(1)) != size:
            raise SystemExit(f"sync.py did not report the upload of {size} bytes:\n{done.stderr}")
        LAST_SYNC_UPLOAD.append(float(sent.group(2)))
    finally:
        for listed in fixture.target.images.list(filters={"name": name}):
            fixture.target.images.delete(listed["id"])


SYNC_CPU: list[float] = []  # CPU seconds (user + system) of the sync.py process, per syncpy run
TIMED: list[float] = []  # start/end of the part of a variant that counts, when not all of it does

VARIANTS: dict[str, Callable[..., None]] = {"plain": plain_glanceclient, "facade": facade_upload,
                                            "syncpy": syncpy_upload, "syncpy-baseline": syncpy_baseline_upload}


# ------------------------------------------------------------------------------ helpers
def file_hashes(path: Path) -> dict[str, str]:
    md5, sha512 = hashlib.md5(), hashlib.sha512()
    with open(path, "rb") as stream:
        while chunk := stream.read(MIB):
            md5.update(chunk)
            sha512.update(chunk)
    return {"md5": md5.hexdigest(), "sha512": sha512.hexdigest()}


def random_file(path: Path, size: int) -> Path:
    with open(path, "wb") as stream:
        left = size
        while left:
            block = min(left, 16 * MIB)
            stream.write(os.urandom(block))
            left -= block
    return path


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def cpu_seconds() -> float:
    """CPU time (user + system) of this process so far, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def throughput(cloud: Cloud, path: Path, runs: int, variants: list[str]) -> dict[str, list[tuple[float, float]]]:
    """{variant: [(MiB/s, client CPU seconds), ...]}"""
    size = path.stat().st_size
    hashes = file_hashes(path)  # the master's hashes: computed once, outside the timing
    import glanceclient.client, keystoneauth1.session  # noqa: E401,F401  imports outside the timing too
    import fiwareglancesync.glancesync.facades.openstack  # noqa: F401
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for run in range(1, runs + 1):
        for name in variants:
            kwargs = {"hashes": hashes} if name == "facade" else {}
            TIMED.clear()
            started, cpu = time.perf_counter(), cpu_seconds()
            VARIANTS[name](cloud, path, size, **kwargs)
            elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
            if TIMED:  # the variant timed its own part (syncpy: the sync.py process only, its own CPU)
                elapsed, cpu = TIMED[1] - TIMED[0], SYNC_CPU[-1] if SYNC_CPU else float("nan")
            rate = size / MIB / elapsed
            results[name].append((rate, cpu))
            extra = (f"; its upload alone {size / MIB / LAST_SYNC_UPLOAD[-1]:.1f} MiB/s"
                     if name.startswith("syncpy") else "")
            print(f"  run {run} {name:>7}: {elapsed:6.2f} s  {rate:7.1f} MiB/s  client CPU {cpu:5.2f} s"
                  f"   (load {load()}){extra}", flush=True)
    return results


def child_peak_rss(cloud: Cloud, path: Path | None) -> int:
    """Peak RSS in bytes of a child that uploads ``path`` through the facade (or, with None,
    only imports and authenticates)."""
    command = [sys.executable, __file__, "--child", str(path) if path else "-"]
    process = subprocess.Popen(command, env={**os.environ, **cloud.env()})
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"child {command} failed with status {process.returncode}")
    return usage.ru_maxrss * 1024  # KiB on Linux


def child_main(arg: str) -> int:
    cloud = Cloud.from_env(os.environ)
    if arg == "-":
        from fiwareglancesync.glancesync.facades.openstack import OpenStackFacade
        from fiwareglancesync.glancesync.region import Region

        facade = OpenStackFacade(cloud.target())
        facade.get_imagelist(Region("master", cloud.region))
        return 0
    path = Path(arg)
    facade_upload(cloud, path, path.stat().st_size)
    return 0


def start_own_lab():
    from tests.integration.lab import start_lab

    lab = start_lab()
    ks = lab.keystone("ks1")
    cloud = Cloud(auth_url=ks.auth_url, username=ks.admin.username, password=ks.admin.password,
                  project_name=ks.admin.project_name, region=lab.master_region)
    return lab, cloud


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=512, help="throughput file size (default 512)")
    parser.add_argument("--runs", type=int, default=3, help="uploads per variant (default 3)")
    parser.add_argument("--variants", nargs="+", default=["plain", "facade", "syncpy"], choices=sorted(VARIANTS))
    parser.add_argument("--bytecode", choices=bytecode_modes.MODES, default="cached",
                        help="syncpy: run sync.py with its .pyc files cached (as installed; default) "
                             "or compiling from source at every start")
    parser.add_argument("--rss-sizes-mib", type=int, nargs="+", default=[64, 1024])
    parser.add_argument("--no-rss", action="store_true", help="skip the memory measurement")
    parser.add_argument("--workdir", help="where to write the test files (default: a temporary dir)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args.child)

    lab = None
    cloud = Cloud.from_env(os.environ)
    if cloud is None:
        print("no OS_AUTH_URL: starting the project's lab", file=sys.stderr)
        lab, cloud = start_own_lab()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="glancesync-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        print(f"cloud {cloud.auth_url}: every variant uploads to {UPLOAD_REGION} (syncpy from {cloud.region}); "
              f"{os.cpu_count()} CPUs; load {load()}")
        if any(name.startswith("syncpy") for name in args.variants):
            print(bytecode_modes.use_bytecode(args.bytecode, workdir, os.environ.get("GLANCESYNC_BENCH_BASELINE")))
        path = random_file(workdir / "throughput.bin", args.size_mib * MIB)
        print(f"throughput: {args.size_mib} MiB x {args.runs} runs per variant, interleaved")
        results = throughput(cloud, path, args.runs, args.variants)
        path.unlink()
        rates = {name: [rate for rate, _ in runs] for name, runs in results.items()}
        print("summary            MiB/s median     best   client CPU s (median)")
        for name, runs in results.items():
            print(f"  {name:>14}  {statistics.median(rates[name]):12.1f} {max(rates[name]):8.1f}"
                  f"   {statistics.median(cpu for _, cpu in runs):8.2f}")
        for name in ("facade", "syncpy", "syncpy-baseline"):
            if "plain" in rates and name in rates:
                ratio = statistics.median(rates[name]) / statistics.median(rates["plain"])
                best = max(rates[name]) / max(rates["plain"])
                print(f"  ratio {name}/plain: {ratio:.3f} (medians), {best:.3f} (bests); goal >= "
                      f"{0.95 if name.startswith('syncpy') else 0.9}")
        if not args.no_rss:
            print("peak RSS of a child process (ru_maxrss)")
            print(f"  {'import + auth + list':>24}: {child_peak_rss(cloud, None) / 1e6:7.1f} MB")
            for size in args.rss_sizes_mib:
                path = random_file(workdir / f"rss-{size}.bin", size * MIB)
                peak = child_peak_rss(cloud, path)
                path.unlink()
                print(f"  {f'facade upload {size} MiB':>24}: {peak / 1e6:7.1f} MB   (goal < 150 MB, flat)")
    finally:
        remove_sync_masters()
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        if lab is not None:
            lab.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
