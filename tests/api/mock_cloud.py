"""The file-backed mock cloud the REST service tests sync: seeded through ``glancesync-mock``.

Master holds three images (two public ones are synchronised), RegionA is empty, RegionB already
has base_ubuntu; ``sync.py --show-regions`` lists RegionA and RegionB.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

# The mock cloud: Master holds three images (two public ones are synchronised), RegionA is
# empty, RegionB already has base_ubuntu.  sync.py --show-regions lists RegionA and RegionB.
SEED = {
    "Master": [
        "Master,base_ubuntu,m1,active,1000,aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa,adminid,True,{'type': 'baseimage'}",
        "Master,base_centos,m2,active,2000,bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb,adminid,True,{'type': 'baseimage'}",
        "Master,private_img,m3,active,500,cccccccccccccccccccccccccccccccc,adminid,False,{}",
    ],
    "RegionA": [],
    "RegionB": [
        "RegionB,base_ubuntu,b1,active,1000,aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa,adminid,True,{'type': 'baseimage'}",
    ],
}

GLANCESYNC_CONF = """\
[main]
master_region = Master

[master]
user = admin
password = secret
keystone_url = http://keystone.invalid:5000/v3
tenant = admin
"""


def federation_seed(regions: int = 20, images: int = 300) -> dict[str, list[str]]:
    """A federation of that size for the mock: Master with ``images`` public images, and regions
    ``Region01``... in step to various degrees (the first has everything, the others miss every
    (n+1)-th image, some with stale metadata or another checksum), deterministic."""
    def row(region: str, j: int, image_id: str, checksum: str, kind: str = "baseimage") -> str:
        return (f"{region},img{j:03d}-ubuntu-{j % 7}.{j % 10},{image_id},active,{1000 + j},{checksum},adminid,"
                f"True,{{'type': '{kind}'}}")

    seed = {"Master": [row("Master", j, f"m{j:03d}", f"{j:032x}") for j in range(images)]}
    for n in range(1, regions + 1):
        name, rows = f"Region{n:02d}", []
        for j in range(images):
            if n > 1 and j % (n + 1) == 0:
                continue  # missing: pending_upload
            checksum = f"{j + 1:032x}" if n % 4 == 0 and j % 13 == 0 else f"{j:032x}"
            kind = "oldtype" if n % 3 == 0 and j % 11 == 0 else "baseimage"
            rows.append(row(name, j, f"r{n:02d}i{j:03d}", checksum, kind))
        seed[name] = rows
    return seed


def seed_mock_store(directory: Path, seed_rows: dict[str, list[str]] | None = None) -> dict[str, str]:
    """Seed a file-backed mock store with :data:`SEED` (or ``seed_rows``) through ``glancesync-mock``.

    Returns the environment the engine needs (GLANCESYNC_MOCKPERSISTENT_PATH, GLANCESYNC_CONFIG).
    The region locks of the syncs go to ``directory/locks``: the default lock directory is one
    per user and host, shared with every other test run syncing a RegionA meanwhile.
    """
    from fiwareglancesync.glancesync.facades import mock

    seed = directory / "seed"
    store = directory / "store"
    seed.mkdir(parents=True)
    for region, rows in (SEED if seed_rows is None else seed_rows).items():
        (seed / f"backup_{region}.csv").write_text("".join(row + "\n" for row in rows), encoding="utf-8")
    # glancesync-mock prints the export line on stdout; keep test output clean.
    with contextlib.redirect_stdout(io.StringIO()):
        status = mock.main(["--path", str(store), "--confirm", str(seed)])
    if status:
        raise RuntimeError(f"glancesync-mock failed with status {status}")
    conf = directory / "glancesync.conf"
    conf.write_text(GLANCESYNC_CONF.replace("[main]\n", f"[main]\nlock_dir = {directory / 'locks'}\n", 1),
                    encoding="utf-8")
    return {"GLANCESYNC_MOCKPERSISTENT_PATH": str(store), "GLANCESYNC_CONFIG": str(conf)}


def read_store_names(store: str, region: str) -> list[str]:
    """Image names in ``backup_<region>.csv`` of a mock store."""
    path = Path(store) / f"backup_{region}.csv"
    return sorted(line.split(",")[1] for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
