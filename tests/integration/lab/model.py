"""What the lab is: its fixed topology and credentials, and :class:`Lab`, the handle tests get.

Topology (every server on 127.0.0.1, ports chosen free at each start)::

    ks1 Keystone   image regions Master, RegionA     ("source" cloud; identity in region Master)
    ks2 Keystone   image region  RegionB             ("target" cloud; identity in region RegionB)
    gl1 Glance     region Master   validates tokens against ks1
    gl2 Glance     region RegionA  validates tokens against ks1
    gl3 Glance     region RegionB  validates tokens against ks2

A Glance validates tokens against exactly one Keystone, so a ks1 token is refused (401) by gl3:
that is what makes RegionB a separate federation ("target") for glancesync.

Both Keystones have the same users: ``admin`` (role admin on project ``admin``; a different
password per Keystone, so a test cannot pass by sending one cloud's credential to the other),
``qa`` / ``qa-pass`` (roles member and reader on project ``tenant-qa``, no admin) and the
``glance`` service user (roles service and admin on project ``service``).
"""

from __future__ import annotations

import atexit
import configparser
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import LabError
from .processes import HOST, Server, stop_servers

MASTER_REGION = "Master"
DOMAIN = "Default"
STATE_FILE = "lab.json"


@dataclass(frozen=True)
class Credential:
    """A Keystone v3 password credential, project scoped."""

    username: str
    password: str
    project_name: str
    user_domain_name: str = DOMAIN
    project_domain_name: str = DOMAIN


@dataclass(frozen=True)
class KeystoneSpec:
    name: str
    admin_password: str
    identity_region: str  # region of its own identity endpoint


@dataclass(frozen=True)
class GlanceSpec:
    """One lab Glance.  The defaults make a plain region; the other fields make it differ the
    way real regions do: ``convert_to`` runs Glance's ``image_conversion`` import plugin (every
    import, glance-download included, ends in that disk format); ``required_properties`` are
    required by its image schema; ``imports_from_lab`` False keeps the lab's Glance ports out of
    its ``import_filtering_opts`` (a glance-download from another lab region is refused);
    ``stores`` makes it a multi-store Glance (``enabled_backends``, file stores, the first the
    default); ``cache`` enables its image cache (``centralized_db`` driver, cache API)."""

    name: str
    region: str
    keystone: str
    convert_to: str | None = None
    required_properties: tuple[str, ...] = ()
    imports_from_lab: bool = True
    stores: tuple[str, ...] = ()
    cache: bool = False


KEYSTONES = (KeystoneSpec("ks1", "ks1-admin-pass", "Master"),
             KeystoneSpec("ks2", "ks2-admin-pass", "RegionB"))
GLANCES = (GlanceSpec("gl1", "Master", "ks1"),
           GlanceSpec("gl2", "RegionA", "ks1"),
           GlanceSpec("gl3", "RegionB", "ks2"))
# A region of the master's Keystone whose Glance converts every import to raw (a Ceph-backed
# region does this): start_lab(glances=GLANCES + (CONVERTING,)).
CONVERTING = GlanceSpec("gl4", "RegionC", "ks1", convert_to="raw")
# A region of the master's Keystone whose image schema requires os_distro and whose
# import_filtering_opts do not allow the other lab Glances' ports (its glance-downloads fail).
STRICT = GlanceSpec("gl5", "RegionD", "ks1", required_properties=("os_distro",), imports_from_lab=False)


def federation(first: int = 3, second: int = 2) -> tuple[GlanceSpec, ...]:
    """Master plus ``first`` regions on the first Keystone (RegionA, then RegionA2...) and
    ``second`` on the second (RegionB, then RegionB2...): a federation for the relay and the
    federation benchmark.  ``federation(1, 1)`` is the CI lab."""
    specs = [GlanceSpec("gl1", MASTER_REGION, "ks1")]
    specs += [GlanceSpec(f"gla{n}", "RegionA" if n == 1 else f"RegionA{n}", "ks1") for n in range(1, first + 1)]
    specs += [GlanceSpec(f"glb{n}", "RegionB" if n == 1 else f"RegionB{n}", "ks2") for n in range(1, second + 1)]
    return tuple(specs)


# An edge region of the master's Keystone: one Glance with two file stores (a site each) and the
# image cache enabled.
EDGE = GlanceSpec("gl6", "RegionE", "ks1", stores=("central", "edge1"), cache=True)
ADMIN_USER, ADMIN_PROJECT, ADMIN_ROLE = "admin", "admin", "admin"
QA = Credential("qa", "qa-pass", "tenant-qa")
QA_ROLES = ("member", "reader")
SERVICE = Credential("glance", "glance-service-pass", "service")
SERVICE_ROLES = ("service", "admin")


@dataclass(frozen=True)
class Keystone:
    """A running lab Keystone."""

    name: str
    port: int
    admin: Credential
    qa: Credential
    regions: tuple[str, ...]  # regions with an image endpoint in its catalog
    identity_region: str      # region of its own identity endpoint

    @property
    def auth_url(self) -> str:
        return f"http://{HOST}:{self.port}/v3"


@dataclass(frozen=True)
class Glance:
    """A running lab Glance API."""

    name: str
    port: int
    region: str
    keystone: str
    convert_to: str | None = None
    required_properties: tuple[str, ...] = ()
    imports_from_lab: bool = True
    stores: tuple[str, ...] = ()
    cache: bool = False

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


class Lab:
    """Handle on a running lab: addresses, credentials, client helpers, :meth:`stop`.

    ``user`` arguments accept ``"admin"``, ``"qa"`` or a :class:`Credential`; ``keystone``
    arguments ``"ks1"`` or ``"ks2"``.
    """

    master_region = MASTER_REGION

    def __init__(self, *, state_dir: Path, venv: Path, keystones: dict[str, Keystone],
                 glances: list[Glance], servers: list[Server],
                 timings: dict[str, float] | None = None, remove_state_on_stop: bool = True):
        self.state_dir = Path(state_dir)
        self.venv = Path(venv)
        self.keystones = dict(keystones)
        self.glances = {glance.region: glance for glance in glances}
        self.servers = list(servers)
        self.timings = dict(timings or {})
        self.remove_state_on_stop = remove_state_on_stop
        self.links: dict = {}  # region -> its WanLink, in a WAN lab (start_lab(wan=...))
        self._stopped = False

    # ---------------------------------------------------------------- addresses
    @property
    def regions(self) -> tuple[str, ...]:
        """All image regions: ``("Master", "RegionA", "RegionB")``."""
        return tuple(self.glances)

    @property
    def ks1(self) -> Keystone:
        return self.keystones["ks1"]

    @property
    def ks2(self) -> Keystone:
        return self.keystones["ks2"]

    def keystone(self, name: str) -> Keystone:
        try:
            return self.keystones[name]
        except KeyError:
            raise LabError(f"no lab keystone {name!r}; have {sorted(self.keystones)}") from None

    def keystone_of(self, region: str) -> Keystone:
        """The Keystone whose catalog holds ``region``'s image endpoint."""
        return self.keystone(self._glance(region).keystone)

    def glance_url(self, region: str) -> str:
        """``http://127.0.0.1:<port>`` of the Glance serving ``region``."""
        return self._glance(region).url

    def endpoint_url(self, region: str) -> str:
        """The URL of ``region``'s image endpoint in its Keystone's catalog: its WAN link in a
        WAN lab, else the Glance itself."""
        link = self.links.get(region)
        return f"http://{HOST}:{link.port}" if link is not None else self.glance_url(region)

    def _glance(self, region: str) -> Glance:
        try:
            return self.glances[region]
        except KeyError:
            raise LabError(f"no lab region {region!r}; have {list(self.glances)}") from None

    # ---------------------------------------------------------------- credentials
    def credential(self, keystone: str = "ks1", user: str | Credential = "admin") -> Credential:
        if isinstance(user, Credential):
            return user
        if user not in ("admin", "qa"):
            raise LabError(f"lab user must be 'admin', 'qa' or a Credential, not {user!r}")
        return getattr(self.keystone(keystone), user)

    def os_env(self, keystone: str = "ks1", region: str = MASTER_REGION,
               user: str | Credential = "admin") -> dict[str, str]:
        """The ``OS_*`` variables a client needs for ``user`` on ``keystone``, region ``region``."""
        cred = self.credential(keystone, user)
        return {
            "OS_AUTH_URL": self.keystone(keystone).auth_url,
            "OS_USERNAME": cred.username,
            "OS_PASSWORD": cred.password,
            "OS_PROJECT_NAME": cred.project_name,
            "OS_TENANT_NAME": cred.project_name,
            "OS_USER_DOMAIN_NAME": cred.user_domain_name,
            "OS_PROJECT_DOMAIN_NAME": cred.project_domain_name,
            "OS_REGION_NAME": region,
        }

    def source_env(self) -> dict[str, str]:
        """``OS_*`` of the source cloud: admin on ks1, ``OS_REGION_NAME=Master``."""
        return self.os_env("ks1", MASTER_REGION)

    # ---------------------------------------------------------------- clients
    def session(self, keystone: str = "ks1", user: str | Credential = "admin"):
        """A keystoneauth1 Session authenticated (lazily) as ``user`` on ``keystone``."""
        from keystoneauth1 import session as ks_session
        from keystoneauth1.identity import v3

        cred = self.credential(keystone, user)
        auth = v3.Password(auth_url=self.keystone(keystone).auth_url, username=cred.username,
                           password=cred.password, project_name=cred.project_name,
                           user_domain_name=cred.user_domain_name,
                           project_domain_name=cred.project_domain_name)
        return ks_session.Session(auth=auth)

    def glance_client(self, keystone: str = "ks1", region: str = MASTER_REGION,
                      user: str | Credential = "admin", endpoint: str | None = None):
        """A glanceclient v2 Client for ``region`` found in ``keystone``'s catalog, or talking
        to ``endpoint`` directly (e.g. another Keystone's Glance, to test token refusal)."""
        from glanceclient import client as glance_client

        sess = self.session(keystone, user)
        if endpoint:
            return glance_client.Client("2", session=sess, endpoint=endpoint)
        return glance_client.Client("2", session=sess, region_name=region, interface="public")

    # ---------------------------------------------------------------- glancesync.conf
    def write_glancesync_conf(self, path: str | Path, *, main: dict | None = None,
                              master: dict | None = None, target: dict | None = None,
                              target_name: str = "other") -> Path:
        """Write a glancesync.conf for this lab and return its path.

        ``[main]`` has ``master_region = Master`` and ``lock_dir`` = ``locks`` in the lab's state
        directory (region locks of this lab's own: two labs on one host both have a RegionA, and
        the default per-user lock directory would keep their syncs apart); ``[master]`` the ks1
        admin credential and ``[<target_name>]`` the ks2 admin credential, as the plain options ``user``,
        ``password``, ``keystone_url`` (the ``/v3`` URL) and ``tenant``.  ``main``, ``master``
        and ``target`` add or override options of their section; a value of None removes the
        option.  Values are written verbatim in ConfigParser syntax (a literal ``%`` must be
        given as ``%%``); a multi-line value becomes continuation lines.
        """
        sections = {
            "main": {"master_region": MASTER_REGION, "lock_dir": str(self.state_dir / "locks")},
            "master": self._target_options("ks1"),
            target_name: self._target_options("ks2"),
        }
        for name, extra in (("main", main), ("master", master), (target_name, target)):
            for option, value in (extra or {}).items():
                if value is None:
                    sections[name].pop(option, None)
                else:
                    sections[name][option] = str(value)
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_dict(sections)
        path = Path(path)
        with open(path, "w") as stream:
            parser.write(stream)
        return path

    def _target_options(self, keystone: str) -> dict[str, str]:
        ks = self.keystone(keystone)
        return {"user": ks.admin.username, "password": ks.admin.password,
                "keystone_url": ks.auth_url, "tenant": ks.admin.project_name}

    # ---------------------------------------------------------------- lifecycle
    def stop(self) -> None:
        """Stop every server this lab started (and their workers), by PID; verify they are gone.
        Removes the state directory unless ``remove_state_on_stop`` is False.  Idempotent.
        Raises LabError naming any process that survived SIGKILL."""
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        for link in self.links.values():
            link.stop()
        survivors = stop_servers(self.servers)
        if survivors:
            raise LabError(f"lab processes still alive after SIGKILL: {survivors}")
        if self.remove_state_on_stop:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def save(self) -> Path:
        """Write the state file (``lab.json`` in the state dir) that :meth:`load` reads."""
        data = {
            "state_dir": str(self.state_dir),
            "venv": str(self.venv),
            "keystones": {name: asdict(ks) for name, ks in self.keystones.items()},
            "glances": [asdict(glance) for glance in self.glances.values()],
            "servers": [{"name": s.name, "port": s.port, "pid": s.pid, "probe_url": s.probe_url,
                         "directory": str(s.directory), "logs": [str(p) for p in s.logs]}
                        for s in self.servers],
            "timings": self.timings,
        }
        path = self.state_dir / STATE_FILE
        path.write_text(json.dumps(data, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, state_dir: str | Path) -> "Lab":
        """The Lab described by ``state_dir/lab.json`` (written by a ``start`` elsewhere)."""
        path = Path(state_dir) / STATE_FILE
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise LabError(f"cannot read lab state {path}: {exc}") from None
        keystones = {
            name: Keystone(name=ks["name"], port=ks["port"], admin=Credential(**ks["admin"]),
                           qa=Credential(**ks["qa"]), regions=tuple(ks["regions"]),
                           identity_region=ks["identity_region"])
            for name, ks in data["keystones"].items()}
        servers = [Server(name=s["name"], port=s["port"], pid=s["pid"], probe_url=s["probe_url"],
                          directory=Path(s["directory"]), logs=tuple(map(Path, s["logs"])))
                   for s in data["servers"]]
        return cls(state_dir=Path(data["state_dir"]), venv=Path(data["venv"]),
                   keystones=keystones,
                   glances=[Glance(**{**g, "required_properties": tuple(g.get("required_properties", ())),
                                         "stores": tuple(g.get("stores", ()))})
                            for g in data["glances"]],
                   servers=servers, timings=data.get("timings"))
