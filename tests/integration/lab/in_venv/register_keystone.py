"""Fill freshly bootstrapped lab Keystones with what the tests need (runs in the lab venv).

usage: python register_keystone.py PLAN.json

PLAN.json is written by the harness (launcher.py)::

    {"keystones": [{"name": "ks1", "auth_url": "http://127.0.0.1:P/v3",
                    "admin": {"username": ..., "password": ..., "project_name": ...},
                    "users": [{"username": ..., "password": ..., "project_name": ...,
                               "roles": ["member", "reader"]}, ...],
                    "services": [{"type": "image", "name": "glance",
                                  "endpoints": {"Master": "http://127.0.0.1:G", ...}}, ...]},
                   ...]}

For every Keystone (each in its own thread, they are independent servers): the projects and
users with their role grants on their project; the regions; each service with a public,
internal and admin endpoint per region.  The Keystone has only what ``keystone-manage
bootstrap`` made (admin, default roles, no catalog), so the admin calls go straight to
``auth_url``.  Exit status 0 and one summary line per Keystone on success; on failure the
exception of each failing Keystone on stderr and exit status 1.
"""
import json
import sys
import threading
import traceback
import warnings

warnings.simplefilter("ignore")

from keystoneauth1 import session as ks_session  # noqa: E402
from keystoneauth1.identity import v3  # noqa: E402
from keystoneclient.v3 import client as ks_client  # noqa: E402

DOMAIN = "default"
INTERFACES = ("public", "internal", "admin")


def register(plan):
    admin = plan["admin"]
    auth = v3.Password(auth_url=plan["auth_url"], username=admin["username"],
                       password=admin["password"], project_name=admin["project_name"],
                       user_domain_id=DOMAIN, project_domain_id=DOMAIN)
    keystone = ks_client.Client(session=ks_session.Session(auth=auth),
                                endpoint_override=plan["auth_url"])

    roles = {role.name: role for role in keystone.roles.list()}
    projects = {project.name: project for project in keystone.projects.list(domain=DOMAIN)}
    for spec in plan["users"]:
        name = spec["project_name"]
        if name not in projects:
            projects[name] = keystone.projects.create(name, DOMAIN)
        user = keystone.users.create(spec["username"], domain=DOMAIN, password=spec["password"],
                                     default_project=projects[name])
        for role_name in spec["roles"]:
            if role_name not in roles:
                roles[role_name] = keystone.roles.create(role_name)
            keystone.roles.grant(roles[role_name], user=user, project=projects[name])

    regions = {region.id for region in keystone.regions.list()}
    for spec in plan["services"]:
        service = keystone.services.create(spec["name"], spec["type"])
        for region, url in sorted(spec["endpoints"].items()):
            if region not in regions:
                keystone.regions.create(id=region)
                regions.add(region)
            for interface in INTERFACES:
                keystone.endpoints.create(service, url, interface=interface, region=region)
    return "%s %s: users %s; %s" % (
        plan["name"], plan["auth_url"], ",".join(u["username"] for u in plan["users"]),
        "; ".join("%s in %s" % (spec["type"], ",".join(sorted(spec["endpoints"])))
                  for spec in plan["services"]))


def main(path):
    with open(path) as stream:
        plans = json.load(stream)["keystones"]
    results = {}

    def run(plan):
        try:
            results[plan["name"]] = (True, register(plan))
        except Exception:  # reported below, per Keystone
            results[plan["name"]] = (False, traceback.format_exc())

    threads = [threading.Thread(target=run, args=(plan,)) for plan in plans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failed = False
    for plan in plans:
        ok, text = results[plan["name"]]
        print(text, file=sys.stdout if ok else sys.stderr)
        failed |= not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
