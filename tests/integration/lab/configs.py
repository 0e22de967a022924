"""Per-server files of the lab: configuration, key repositories, schema, data directories.

Each server gets its own directory in the run-state directory and finds everything there:
Keystone through ``OS_KEYSTONE_CONFIG_FILES=<dir>/keystone.conf``, Glance through
``OS_GLANCE_CONFIG_DIR=<dir>`` (which must hold ``glance-api.conf``; it names the paste file).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path

from .model import SERVICE

DATA_DIR = Path(__file__).with_name("data")
# bcrypt's minimum cost: a lab password check costs ~1 ms instead of ~200 ms at the default
PASSWORD_HASH_ROUNDS = 4

KEYSTONE_CONF = """\
# Lab Keystone {name} (written by tests/integration/lab/configs.py)
[DEFAULT]
debug = false
log_file = {dir}/keystone.log

[database]
connection = sqlite:///{dir}/keystone.db

[token]
provider = fernet
# longer than any test session, so a token taken at the start never expires mid-run
expiration = 14400

[fernet_tokens]
key_repository = {dir}/fernet-keys

[fernet_receipts]
key_repository = {dir}/fernet-keys

[credential]
key_repository = {dir}/credential-keys

[identity]
password_hash_rounds = {rounds}

# Without a cache every authenticated request runs ~200 SQL queries (~150-250 ms on 2 cores);
# the in-process memory backend brings that to ~10-20 ms and needs no memcached.
[cache]
enabled = true
backend = dogpile.cache.memory
"""

GLANCE_CONF = """\
# Lab Glance API {name} (written by tests/integration/lab/configs.py)
[DEFAULT]
debug = false
log_file = {dir}/glance-api.log
public_endpoint = http://127.0.0.1:{port}
# the default (file:///tmp/staging/) would be shared by every Glance on the machine
node_staging_uri = file://{dir}/staging
# glance-download: a Glance of the master's Keystone pulls images from another region's Glance
# (glancesync's transfer_method = auto/glance-download); copy-image and the others as upstream
enabled_import_methods = [glance-direct,web-download,copy-image,glance-download]

[database]
connection = sqlite:///{dir}/glance.db

{store_conf}
[import_filtering_opts]
# glance-download fetches http://127.0.0.1:<lab Glance port>/v2/images/<id>/file: the lab's
# Glance ports (the default is [80, 443]) and loopback (refused unless listed: SSRF guard)
allowed_ports = [{allowed_ports}]
allowed_hosts = [127.0.0.1]

[image_format]
# Glance checks uploaded bytes against disk_format by default (HTTP 415 for random bytes
# declared qcow2); tests upload made-up data, so the lab does not.
require_image_format_match = false

[task]
work_dir = {dir}/tasks

[oslo_concurrency]
lock_path = {dir}/locks

[paste_deploy]
flavor = keystone
config_file = {dir}/glance-api-paste.ini

[keystone_authtoken]
www_authenticate_uri = {auth_url}
auth_url = {auth_url}
auth_type = password
username = {service_user}
password = {service_password}
project_name = {service_project}
user_domain_name = Default
project_domain_name = Default
# empty: keystonemiddleware keeps its token cache in process
memcached_servers =
"""


def write_keystone(directory: Path, name: str) -> Path:
    """Create ``directory`` with keystone.conf and fresh fernet and credential key
    repositories (owned by the current user); return the config path."""
    directory.mkdir(parents=True)
    conf = directory / "keystone.conf"
    conf.write_text(KEYSTONE_CONF.format(name=name, dir=directory,
                                          rounds=PASSWORD_HASH_ROUNDS))
    for repository in ("fernet-keys", "credential-keys"):
        write_fernet_repository(directory / repository)
    return conf


def write_fernet_repository(path: Path) -> None:
    """What ``keystone-manage fernet_setup``/``credential_setup`` produce: key ``0`` (staged)
    and key ``1`` (primary), each a url-safe base64 32-byte key.  Written here because the
    tools cost ~1.5 s each and by default chown to a ``keystone`` user that does not exist."""
    path.mkdir(mode=0o700)
    for index in (0, 1):
        key = path / str(index)
        key.write_bytes(base64.urlsafe_b64encode(os.urandom(32)))
        key.chmod(0o600)


# Single-store configuration: deprecated in favour of enabled_backends but still honoured.
SINGLE_STORE_CONF = """\
[glance_store]
stores = file,http
default_store = file
filesystem_store_datadir = {dir}/images
"""

# A multi-store Glance (GlanceSpec.stores): one file store per name, the first the default; the
# staging and tasks areas are reserved stores of their own.
MULTI_STORE_CONF = """\
[DEFAULT]
enabled_backends = {backends}

[glance_store]
default_backend = {default}

[os_glance_staging_store]
filesystem_store_datadir = {dir}/staging

[os_glance_tasks_store]
filesystem_store_datadir = {dir}/tasks
"""

# Appended for a Glance with an image cache (GlanceSpec.cache): the cache API (/v2/cache) and
# the driver that can say which node holds an image.
CACHE_CONF = """
[DEFAULT]
image_cache_dir = {dir}/cache
image_cache_driver = centralized_db
cache_prefetcher_interval = 1
# the centralized_db driver records which node caches an image under this URL
worker_self_reference_url = http://127.0.0.1:{port}
"""

# Appended for a Glance whose imports are converted (GlanceSpec.convert_to): Glance's
# image_conversion plugin runs qemu-img (Debian's qemu-utils) on every import.
CONVERSION_CONF = """
[image_import_opts]
image_import_plugins = ['image_conversion']

[image_conversion]
output_format = {output_format}

[wsgi]
# qemu-img runs under oslo_concurrency.prlimit with this interpreter; Glance's default is
# sys.executable, which under uWSGI is the uwsgi binary ("unable to load configuration").
python_interpreter = {python}
"""


def write_glance(directory: Path, glance, auth_url: str, venv: Path,
                 import_ports: tuple[int, ...] = ()) -> Path:
    """Create ``directory`` with glance-api.conf, the paste file (keystone flavor), the image
    property schema and private staging/tasks/locks/images dirs for ``glance`` (a
    :class:`~.model.Glance`: name, port and how its region differs); return the directory.
    ``import_ports``: the other Glances' ports, which glance-download may fetch from."""
    directory.mkdir(parents=True)
    for sub in ("images", "staging", "tasks", "locks", *(f"store-{store}" for store in glance.stores)):
        (directory / sub).mkdir()
    if glance.stores:
        store_conf = MULTI_STORE_CONF.format(dir=directory, default=glance.stores[0],
                                             backends=", ".join(f"{store}:file" for store in glance.stores))
        store_conf += "".join(f"\n[{store}]\nfilesystem_store_datadir = {directory}/store-{store}\n"
                              for store in glance.stores)
    else:
        store_conf = SINGLE_STORE_CONF.format(dir=directory)
    conf = GLANCE_CONF.format(store_conf=store_conf,
        name=glance.name, dir=directory, port=glance.port, auth_url=auth_url,
        allowed_ports=",".join(str(p) for p in (80, 443, *sorted(set(import_ports) | {glance.port}))),
        service_user=SERVICE.username,
        service_password=SERVICE.password, service_project=SERVICE.project_name)
    if glance.cache:
        conf += CACHE_CONF.format(dir=directory, port=glance.port)
    if glance.convert_to:
        conf += CONVERSION_CONF.format(output_format=glance.convert_to, python=venv / "bin" / "python")
    (directory / "glance-api.conf").write_text(conf)
    paste = venv / "etc" / "glance" / "glance-api-paste.ini"
    if not paste.is_file():
        raise FileNotFoundError(f"{paste} (installed by the glance wheel) is missing")
    shutil.copyfile(paste, directory / "glance-api-paste.ini")
    # The wheel has no schema-image.json: without it kernel_id/ramdisk_id are free strings.
    properties = json.loads((DATA_DIR / "schema-image.json").read_text())
    schema = ({"properties": properties, "required": list(glance.required_properties)}
              if glance.required_properties else properties)
    (directory / "schema-image.json").write_text(json.dumps(schema, indent=4) + "\n")
    return directory
