"""The credential of a glancesync.conf target: from its section, clouds.yaml or the OS_* environment.

``cloud = <name>`` (``[master]``: ``$OS_CLOUD``) takes everything from clouds.yaml; for
``[master]`` without credential options, ``OS_AUTH_TYPE=v3applicationcredential`` takes it
from ``OS_APPLICATION_CREDENTIAL_*`` (both read by :mod:`.clouds`).  Otherwise
``credential = user,<base64 password>,url,tenant`` provides all four fields; the separate
options ``user``, ``password`` (plain text), ``keystone_url`` and ``tenant`` override single
fields.  Missing fields of ``[master]`` come from ``OS_USERNAME``, ``OS_PASSWORD``,
``OS_AUTH_URL``, ``OS_TENANT_NAME``/``OS_PROJECT_NAME`` and its domains from
``OS_USER_DOMAIN_NAME``/``OS_PROJECT_DOMAIN_NAME``; another target missing one is an error.
"""

from __future__ import annotations

import base64
import binascii
from typing import Mapping

from .clouds import CloudCredential, load_cloud, load_environment_credential
from .config_file import Reader
from .errors import ConfigError
from .keystone import DEFAULT_DOMAIN
from .region import MASTER_TARGET

CREDENTIAL_FIELDS = ("user", "password", "keystone_url", "tenant")

# master credential field -> environment variables consulted, in order
MASTER_ENV_FALLBACK = {
    "user": ("OS_USERNAME",),
    "password": ("OS_PASSWORD",),
    "keystone_url": ("OS_AUTH_URL",),
    "tenant": ("OS_TENANT_NAME", "OS_PROJECT_NAME"),
}
MASTER_ENV_MESSAGES = {
    "user": "A username for master target must be provided in configuration or OS_USERNAME must be defined",
    "password": "A password for master target must be provided in configuration or OS_PASSWORD must be "
                "defined. In the configuration file, passwords must be encoded with base64",
    "keystone_url": "A keystone url for master target must be provided in configuration or OS_AUTH_URL must be defined.",
    "tenant": "A tenant name for master target must be provided in configuration or OS_TENANT_NAME must be defined.",
}
MISSING_CREDENTIAL = ("A credential parameter is mandatory for each target "
                      "(or the set: user, password, tenant, keystone_url)")


def cloud_name(reader: Reader, name: str, environ: Mapping[str, str]) -> str | None:
    """The clouds.yaml cloud a target uses: its ``cloud`` option; for ``[master]`` without any
    credential option, ``$OS_CLOUD``."""
    cloud = reader.text(name, "cloud")
    if cloud is None and name == MASTER_TARGET and environ.get("OS_CLOUD"):
        if not any(reader.text(name, option) for option in ("credential", *CREDENTIAL_FIELDS)):
            cloud = environ["OS_CLOUD"]
    return cloud


def credential(reader: Reader, name: str, environ: Mapping[str, str]) -> dict[str, object]:
    """The :class:`~.config.Target` fields of target ``name``'s credential: user, password,
    keystone_url, tenant, the two domains and ``cloud`` (see the module docstring)."""
    cloud = cloud_name(reader, name, environ)
    explicit = [option for option in ("credential", *CREDENTIAL_FIELDS) if reader.text(name, option)]
    if cloud is not None and reader.text(name, "cloud") is not None and explicit:
        raise ConfigError(f"{reader.where(name, 'cloud')}: cannot be combined with {', '.join(explicit)} "
                          "(the cloud's clouds.yaml entry holds the whole credential)")
    if cloud is not None:
        return _from_cloud(load_cloud(cloud, environ, reader.where(name, "cloud")))
    if name == MASTER_TARGET and not explicit and environ.get("OS_AUTH_TYPE", "password") not in ("", "password",
                                                                                                  "v3password"):
        return _from_cloud(load_environment_credential(environ, f"{reader.source}: [{name}]"))
    values: dict[str, object] = {}
    packed = reader.text(name, "credential")
    if packed:
        values.update(_unpack_credential(reader.where(name, "credential"), packed))
    for option in CREDENTIAL_FIELDS:
        value = reader.text(name, option)
        if value is not None:
            values[option] = value
    if name == MASTER_TARGET:
        for option, variables in MASTER_ENV_FALLBACK.items():
            if option not in values:
                found = next((environ[v] for v in variables if environ.get(v)), None)
                if found is None:
                    raise ConfigError(MASTER_ENV_MESSAGES[option])
                values[option] = found
        user_domain = reader.text(name, "user_domain_name") or environ.get("OS_USER_DOMAIN_NAME")
        project_domain = reader.text(name, "project_domain_name") or environ.get("OS_PROJECT_DOMAIN_NAME")
    else:
        missing = [option for option in CREDENTIAL_FIELDS if option not in values]
        if missing:
            raise ConfigError(f"{reader.source}: [{name}] {MISSING_CREDENTIAL}; missing: {', '.join(missing)}")
        user_domain = reader.text(name, "user_domain_name")
        project_domain = reader.text(name, "project_domain_name")
    values["user_domain_name"] = user_domain or DEFAULT_DOMAIN
    values["project_domain_name"] = project_domain or DEFAULT_DOMAIN
    return values


def _from_cloud(cloud: CloudCredential) -> dict[str, object]:
    return {"user": "", "password": "", "keystone_url": cloud.auth_url, "tenant": cloud.project,
            "user_domain_name": DEFAULT_DOMAIN, "project_domain_name": DEFAULT_DOMAIN, "cloud": cloud}


def _unpack_credential(where: str, packed: str) -> dict[str, str]:
    # A backslash at the end of a line is a line continuation inside the value, not data.
    packed = packed.replace("\\\n", "")
    parts = [part.strip() for part in packed.split(",")]
    if len(parts) != 4 or not all(parts):
        raise ConfigError(f"{where}: expected 4 comma-separated fields "
                          f"(user,base64 password,keystone url,tenant), got {len(parts)}")
    user, encoded, url, tenant = parts
    try:
        password = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # ValueError: non-ASCII text; UnicodeDecodeError is one
        raise ConfigError(f"{where}: the password (second field) is not valid base64") from None
    return {"user": user, "password": password, "keystone_url": url, "tenant": tenant}
