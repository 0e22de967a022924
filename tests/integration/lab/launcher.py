"""Build and start the lab: :func:`start_lab` returns a checked, running :class:`Lab`.

Steps (the machine may have only 2 cores: what can overlap does):

1. the cached venv (:mod:`.venv`; pip only on the first run) and its ready-made empty
   databases (:mod:`.databases`; ``db_sync`` and ``bootstrap`` only on the first run);
2. a fresh run-state directory and free ports; config files, key repositories, copies of the
   databases;
3. the 2 Keystone and 3 Glance servers start together; wait until all 5 answer HTTP 200;
4. register users, projects, roles, regions, the identity and image services and their
   endpoints (one script in the lab venv, both Keystones in parallel);
5. smoke check: an admin token from each Keystone, whose catalog lists exactly the expected
   identity and image endpoints, accepted by each of its Glances.

Any failure stops what was started and raises :class:`LabError` with the reason and log tails; the
state directory is then kept for inspection.  A port taken by someone else between choosing and
binding it makes the whole start retry with new ports.
"""

from __future__ import annotations

import atexit
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from . import configs
from .databases import ensure_databases
from .errors import LabError, PortTaken, tail_text
from .model import (ADMIN_PROJECT, ADMIN_USER, GLANCES, KEYSTONES, QA, QA_ROLES,
                    SERVICE, SERVICE_ROLES, Credential, Glance, GlanceSpec, Keystone, Lab)
from .processes import (IN_VENV_DIR, UWSGI_GLANCE, pick_ports, server_env, spawn_uwsgi,
                        wait_until_up)
from .venv import ensure_venv
from .wan import LinkSpec, WanLink

START_TIMEOUT = 120.0  # per wait for the servers; generous for a busy 2-core CI machine
TOOL_TIMEOUT = 180.0
PORT_ATTEMPTS = 3


def start_lab(*, venv: Path | None = None, tie_to_parent: bool = True,
              remove_state_on_stop: bool = True, log=None,
              glances: tuple[GlanceSpec, ...] = GLANCES,
              wan: dict[str, LinkSpec] | LinkSpec | None = None) -> Lab:
    """Start the lab and return it running and checked (see module docstring).

    ``glances``: the Glances to run (default :data:`~.model.GLANCES`, the CI lab); add e.g.
    :data:`~.model.CONVERTING` for a region that differs, or take :func:`~.model.federation`.
    ``wan``: every Glance is reached (in the catalogs, so by clients and by glance-download
    alike) through a :class:`~.wan.WanLink` with this link, or with ``wan[region]`` per region.

    ``tie_to_parent``: the servers get SIGTERM if this process dies without calling
    :meth:`Lab.stop` (and :meth:`Lab.stop` is also registered with atexit).  Pass False to
    leave the lab running after this process exits (the ``start`` command).
    ``log``: callable receiving progress lines (default: stderr with elapsed time).
    """
    log = log or _stderr_logger()
    started = time.monotonic()
    venv_path = ensure_venv(venv, log)
    timings = {"venv": round(time.monotonic() - started, 2)}
    for attempt in range(1, PORT_ATTEMPTS + 1):
        try:
            lab = _start_once(venv_path, tie_to_parent, remove_state_on_stop, log, timings, glances, wan)
            break
        except PortTaken as exc:
            if attempt == PORT_ATTEMPTS:
                raise
            log(f"port clash ({str(exc).splitlines()[0]}); retrying with new ports")
    lab.timings["total"] = round(time.monotonic() - started, 2)
    lab.save()
    log(f"lab ready in {lab.timings['total']:.1f}s (state {lab.state_dir})")
    return lab


def _start_once(venv: Path, tie_to_parent: bool, remove_state_on_stop: bool, log,
                timings: dict[str, float], specs: tuple[GlanceSpec, ...],
                wan: dict[str, LinkSpec] | LinkSpec | None = None) -> Lab:
    ports = dict(zip([k.name for k in KEYSTONES] + [g.name for g in specs],
                     pick_ports(len(KEYSTONES) + len(specs))))
    state = Path(tempfile.mkdtemp(prefix="glancesync-lab-"))
    keystones = {
        spec.name: Keystone(
            name=spec.name, port=ports[spec.name],
            admin=Credential(ADMIN_USER, spec.admin_password, ADMIN_PROJECT), qa=QA,
            regions=tuple(g.region for g in specs if g.keystone == spec.name),
            identity_region=spec.identity_region)
        for spec in KEYSTONES}
    glances = [Glance(name=g.name, port=ports[g.name], region=g.region, keystone=g.keystone,
                      convert_to=g.convert_to, required_properties=g.required_properties,
                      imports_from_lab=g.imports_from_lab, stores=g.stores, cache=g.cache)
               for g in specs]
    servers = []
    lab = Lab(state_dir=state, venv=venv, keystones=keystones, glances=glances, servers=servers,
              timings=timings, remove_state_on_stop=remove_state_on_stop)
    if wan is not None:
        for glance in glances:
            spec = wan.get(glance.region, LinkSpec()) if isinstance(wan, dict) else wan
            lab.links[glance.region] = WanLink(glance.port, spec, name=glance.region).start()
    if tie_to_parent:
        atexit.register(lab.stop)
    try:
        _run_steps(lab, venv, state, tie_to_parent, log)
    except BaseException as exc:  # also Ctrl-C: never leave servers behind
        # keep the logs for inspection, unless the start is simply retried on other ports
        lab.remove_state_on_stop = isinstance(exc, PortTaken)
        try:
            lab.stop()
        except LabError as stop_error:
            log(f"while cleaning up: {stop_error}")
        if isinstance(exc, LabError) and not isinstance(exc, PortTaken):
            raise type(exc)(f"{exc}\n(lab state kept in {state})") from None
        raise
    return lab


def _run_steps(lab: Lab, venv: Path, state: Path, tie_to_parent: bool, log) -> None:
    step = _Stopwatch(lab.timings)
    for ks in lab.keystones.values():
        configs.write_keystone(state / ks.name, ks.name)
    for glance in lab.glances.values():
        import_ports = (tuple(g.port for g in lab.glances.values()) + tuple(link.port for link in lab.links.values())
                        if glance.imports_from_lab else ())
        configs.write_glance(state / glance.name, glance, lab.keystone(glance.keystone).auth_url, venv,
                             import_ports=import_ports)

    # Every server starts from a copy of the same empty, bootstrapped databases.
    databases = ensure_databases(venv, log)
    for glance in lab.glances.values():
        shutil.copyfile(databases / "glance.db", state / glance.name / "glance.db")
    for ks in lab.keystones.values():
        shutil.copyfile(databases / f"keystone-{ks.name}.db", state / ks.name / "keystone.db")
    step("databases")

    log(f"starting {len(lab.keystones)} Keystone and {len(lab.glances)} Glance servers")
    for ks in lab.keystones.values():
        conf = state / ks.name / "keystone.conf"
        lab.servers.append(spawn_uwsgi(
            name=ks.name, venv=venv, directory=state / ks.name, port=ks.port,
            module="keystone_app", env=server_env({"OS_KEYSTONE_CONFIG_FILES": str(conf)}),
            probe_path="/v3", app_log=state / ks.name / "keystone.log",
            tie_to_parent=tie_to_parent))
    for glance in lab.glances.values():
        lab.servers.append(spawn_uwsgi(
            name=glance.name, venv=venv, directory=state / glance.name, port=glance.port,
            module="glance_app", env=server_env({"OS_GLANCE_CONFIG_DIR": str(state / glance.name)}),
            probe_path="/healthcheck", app_log=state / glance.name / "glance-api.log",
            extra_args=UWSGI_GLANCE, tie_to_parent=tie_to_parent))
    wait_until_up(lab.servers, START_TIMEOUT)
    step("servers_up")
    log(f"all {len(lab.servers)} servers answer; registering users, regions and image endpoints")

    _register(lab, venv, state)
    step("register")
    _smoke_check(lab)
    step("smoke")


def _register(lab: Lab, venv: Path, state: Path) -> None:
    plan = {"keystones": [
        {"name": ks.name, "auth_url": ks.auth_url,
         "admin": {"username": ks.admin.username, "password": ks.admin.password,
                   "project_name": ks.admin.project_name},
         "users": [dict(username=SERVICE.username, password=SERVICE.password,
                        project_name=SERVICE.project_name, roles=list(SERVICE_ROLES)),
                   dict(username=ks.qa.username, password=ks.qa.password,
                        project_name=ks.qa.project_name, roles=list(QA_ROLES))],
         "services": [
             {"type": "identity", "name": "keystone",
              "endpoints": {ks.identity_region: ks.auth_url}},
             {"type": "image", "name": "glance",
              "endpoints": {region: lab.endpoint_url(region) for region in ks.regions}}]}
        for ks in lab.keystones.values()]}
    plan_path = state / "register-plan.json"
    plan_path.write_text(json.dumps(plan, indent=2))
    script = IN_VENV_DIR / "register_keystone.py"
    try:
        done = subprocess.run([str(venv / "bin" / "python"), str(script), str(plan_path)],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              env=server_env({}), timeout=TOOL_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise LabError(f"Keystone registration did not finish in {TOOL_TIMEOUT:.0f}s") from None
    (state / "register.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise LabError("Keystone registration failed:\n" + tail_text(done.stderr, 30) + "\n"
                       + "\n".join(s.log_tails() for s in lab.servers if s.name in lab.keystones))


def _smoke_check(lab: Lab) -> None:
    """Admin token per Keystone; its catalog's identity and image endpoints are exactly the
    expected ones (every interface); each of its Glances lists images with that token."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for ks in lab.keystones.values():
        token, catalog = _issue_token(opener, ks)
        found = {(service["type"], ep["region_id"], ep["interface"]): ep["url"].rstrip("/")
                 for service in catalog for ep in service["endpoints"]}
        expected = {(kind, region, interface): url
                    for kind, region, url in
                    [("identity", ks.identity_region, ks.auth_url)]
                    + [("image", region, lab.endpoint_url(region)) for region in ks.regions]
                    for interface in ("public", "internal", "admin")}
        if found != expected:
            raise LabError(f"smoke check: {ks.name}'s catalog is {found}, expected {expected}")
        for region in ks.regions:
            request = urllib.request.Request(lab.glance_url(region) + "/v2/images",
                                             headers={"X-Auth-Token": token})
            try:
                with opener.open(request, timeout=30) as response:
                    json.load(response)
            except (OSError, ValueError) as exc:
                server = next(s for s in lab.servers if s.port == lab.glances[region].port)
                raise LabError(f"smoke check: GET /v2/images on {region} "
                               f"({lab.glance_url(region)}) with a {ks.name} admin token "
                               f"failed: {exc}\n{server.log_tails()}") from None


def _issue_token(opener, ks: Keystone) -> tuple[str, list]:
    body = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": ks.admin.username, "password": ks.admin.password,
            "domain": {"name": ks.admin.user_domain_name}}}},
        "scope": {"project": {"name": ks.admin.project_name,
                              "domain": {"name": ks.admin.project_domain_name}}}}}
    request = urllib.request.Request(ks.auth_url + "/auth/tokens", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with opener.open(request, timeout=30) as response:
            return response.headers["X-Subject-Token"], json.load(response)["token"]["catalog"]
    except (OSError, ValueError, KeyError) as exc:
        raise LabError(f"smoke check: no admin token from {ks.name} ({ks.auth_url}): "
                       f"{exc}") from None


class _Stopwatch:
    """Records the duration of each named step into ``timings``."""

    def __init__(self, timings: dict[str, float]):
        self.timings = timings
        self.last = time.monotonic()

    def __call__(self, name: str) -> None:
        now = time.monotonic()
        self.timings[name] = round(now - self.last, 2)
        self.last = now


def _stderr_logger():
    t0 = time.monotonic()

    def log(message: str) -> None:
        print(f"[lab {time.monotonic() - t0:5.1f}s] {message}", file=sys.stderr, flush=True)
    return log
