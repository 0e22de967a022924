"""Credentials from clouds.yaml / secure.yaml and from OS_AUTH_TYPE, read by openstacksdk's loader.

A target that says ``cloud = <name>`` (and ``[master]`` under ``OS_CLOUD``) takes its credential
from clouds.yaml, found the standard way (``OS_CLIENT_CONFIG_FILE``, ``./clouds.yaml``,
``~/.config/openstack/``, ``/etc/openstack/``; secure.yaml merged in), through
:class:`openstack.config.OpenStackConfig`: every keystoneauth1 auth type it knows (password,
v3applicationcredential, token, v3multifactor, ...) works, and the loader builds the auth plugin
the facade's session uses.  ``[master]`` may also name an application credential in the
environment (``OS_AUTH_TYPE=v3applicationcredential`` with ``OS_APPLICATION_CREDENTIAL_ID`` or
``_NAME`` and ``_SECRET``); the same loader builds that plugin, from arguments.

openstacksdk is imported only here and only when such a credential is configured, so runs with
plain passwords never load it.  Every problem is a :class:`~.errors.ConfigError` naming the cloud
(and the file where there is one), never a secret.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import ConfigError, one_line

# The auth options whose values are secrets (never shown; scrubbed from facade messages).
SECRET_AUTH_OPTIONS = ("password", "application_credential_secret", "token", "passcode", "secret")
APPLICATION_CREDENTIAL_ENV = {
    "application_credential_id": "OS_APPLICATION_CREDENTIAL_ID",
    "application_credential_name": "OS_APPLICATION_CREDENTIAL_NAME",
    "application_credential_secret": "OS_APPLICATION_CREDENTIAL_SECRET",
    "auth_url": "OS_AUTH_URL",
    "username": "OS_USERNAME",
    "user_domain_name": "OS_USER_DOMAIN_NAME",
}


@dataclass(frozen=True, eq=False)
class CloudCredential:
    """A credential the loader resolved: what glancesync needs of it, and its auth plugin."""

    name: str                     # the cloud's name ("environment" for OS_AUTH_TYPE)
    source: str                   # the clouds.yaml it came from, or "the environment"
    auth_type: str
    auth_url: str
    project: str                  # project name or id, for messages
    region_name: str | None       # the cloud's region_name (a master-region fallback)
    regions: tuple[str, ...]      # the cloud's regions list: limits the target's regions
    verify: bool | str
    _region: Any = field(repr=False)  # openstack.config.cloud_region.CloudRegion

    def auth_plugin(self) -> Any:
        """The keystoneauth1 plugin the loader built (one object: tokens are kept across calls)."""
        return self._region.get_auth()

    def secrets(self) -> list[str]:
        """The secret values of the credential, for scrubbing messages."""
        auth = self._region.config.get("auth", {}) or {}
        return [str(auth[key]) for key in SECRET_AUTH_OPTIONS if auth.get(key)]


def config_files(environ: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """clouds.yaml and secure.yaml candidates in the loader's order, ``OS_CLIENT_*_FILE`` first."""
    from openstack.config import loader

    clouds, secure = list(loader.CONFIG_FILES), list(loader.SECURE_FILES)
    if environ.get("OS_CLIENT_CONFIG_FILE"):
        clouds.insert(0, environ["OS_CLIENT_CONFIG_FILE"])
    if environ.get("OS_CLIENT_SECURE_FILE"):
        secure.insert(0, environ["OS_CLIENT_SECURE_FILE"])
    return clouds, secure


def load_cloud(name: str, environ: Mapping[str, str], where: str) -> CloudCredential:
    """The credential of cloud ``name`` (``where`` names the option that asked for it)."""
    from openstack import exceptions as sdk_exceptions
    from openstack.config import OpenStackConfig

    clouds, secure = config_files(environ)
    broken = _unreadable(clouds)  # the loader only logs a warning and goes on to the next file
    if broken:
        raise ConfigError(f"{where}: cloud {name!r}: {broken}")
    config = OpenStackConfig(config_files=clouds, secure_files=secure, load_envvars=False, app_name="glancesync")
    source = config.config_filename or "clouds.yaml"
    if name not in config.get_cloud_names():
        searched = config.config_filename or "no clouds.yaml found (searched " + ", ".join(_shortest(clouds)) + ")"
        raise ConfigError(f"{where}: cloud {name!r} is not defined in {searched}")
    try:
        region = _get_one(config, cloud=name)
    except (sdk_exceptions.SDKException, _keystoneauth_errors(), KeyError, ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: cloud {name!r} in {source}: {_cause(exc)}") from None
    return _credential(name, source, region, config)


def load_environment_credential(environ: Mapping[str, str], where: str) -> CloudCredential:
    """``OS_AUTH_TYPE`` + ``OS_APPLICATION_CREDENTIAL_*`` (and ``OS_AUTH_URL``) as a credential."""
    from openstack import exceptions as sdk_exceptions
    from openstack.config import OpenStackConfig

    auth_type = environ.get("OS_AUTH_TYPE", "")
    auth = {key: environ[var] for key, var in APPLICATION_CREDENTIAL_ENV.items() if environ.get(var)}
    config = OpenStackConfig(load_yaml_config=False, load_envvars=False, app_name="glancesync")
    try:
        region = _get_one(config, auth_type=auth_type, auth=auth, region_name=environ.get("OS_REGION_NAME", ""))
    except (sdk_exceptions.SDKException, _keystoneauth_errors(), KeyError, ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: OS_AUTH_TYPE={auth_type}: {_cause(exc)}") from None
    return _credential("environment", "the environment", region, config)


def _get_one(config: Any, **kwargs: Any) -> Any:
    from openstack import warnings as sdk_warnings

    with warnings.catch_warnings():
        # openstacksdk 4.x warns on every CloudRegion that its InfluxDB support is deprecated,
        # whether InfluxDB is configured or not; glancesync uses neither.
        warnings.filterwarnings("ignore", "Support for InfluxDB", sdk_warnings.RemovedInSDK60Warning)
        return config.get_one(**kwargs)


def _credential(name: str, source: str, region: Any, config: Any) -> CloudCredential:
    auth = region.config.get("auth", {}) or {}
    listed = (config.cloud_config.get("clouds", {}).get(name) or {}).get("regions") or []
    regions = tuple(r if isinstance(r, str) else str(r.get("name", "")) for r in listed)
    return CloudCredential(
        name=name, source=source, auth_type=str(region.config.get("auth_type") or "password"),
        auth_url=str(auth.get("auth_url", "")),
        project=str(auth.get("project_name") or auth.get("project_id") or ""),
        region_name=region.region_name or None,
        regions=tuple(r for r in regions if r),
        verify=region.verify if region.cacert is None else region.cacert,
        _region=region,
    )


def _keystoneauth_errors() -> type[Exception]:
    from keystoneauth1 import exceptions as ks_exc

    return ks_exc.ClientException


def _cause(exc: Exception) -> str:
    text = one_line(exc)
    if type(exc).__name__ == "MissingRequiredOptions":
        names = ", ".join(option.dest for option in getattr(exc, "options", []))
        text = f"its auth section lacks {names}" if names else text
    elif type(exc).__name__ == "NoMatchingPlugin":
        text = f"unknown auth type ({text})"
    return text


def _unreadable(paths: list[str]) -> str | None:
    """Why the first existing clouds file the loader skipped could not be read (it only warns)."""
    import yaml

    for path in paths:
        if not os.path.exists(path):
            continue
        try:
            with open(path, encoding="utf-8") as stream:
                data = yaml.safe_load(stream)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            return f"{path} is not valid YAML ({one_line(exc)})"
        if not isinstance(data, dict) or not isinstance(data.get("clouds"), dict):
            return f"{path} has no 'clouds' mapping"
        return None
    return None


def _shortest(paths: list[str]) -> list[str]:
    return list(dict.fromkeys(os.path.dirname(p) or "." for p in paths))
