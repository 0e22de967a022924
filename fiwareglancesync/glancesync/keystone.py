"""Keystone, described once: which identity API a credential speaks, at which URL, with which plugin.

Used by the engine's configuration (:mod:`.config`: the version of a target), the real facade
(:mod:`.facades.openstack`: its session) and the REST service's token validation
(:mod:`fiwareglancesync.app.auth`: the service credential, whose URL and version
:mod:`fiwareglancesync.app.settings` resolves with :func:`resolve`).  The version rules are
README "Using a real cloud": Keystone **v3** unless the URL ends in ``/v2.0``, or v2.0 is asked for
explicitly and the URL carries no version.

Choosing a version and a URL is pure.  Building a plugin or a session imports keystoneauth1,
lazily, so that the mock runs and the pure modules never load it.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

V3 = "3"
V2 = "2.0"
DEFAULT_DOMAIN = "Default"

_VERSION_SUFFIX = re.compile(r"/v(2\.0|3)$")


def api_version(url: str, requested: str | None = None) -> str:
    """``"3"`` or ``"2.0"`` for a Keystone ``url``: a version at the end of the URL wins, then
    ``requested`` (``"2"``/``"2.0"``/``"v2.0"`` or ``"3"``/``"v3"``; None or empty means v3).

    :raise ValueError: ``requested`` names another version.
    """
    match = _VERSION_SUFFIX.search(url.rstrip("/"))
    if match:
        return V2 if match.group(1) == "2.0" else V3
    wanted = (requested or "").strip().lower().lstrip("v")
    if wanted in ("", "3"):
        return V3
    if wanted in ("2", "2.0"):
        return V2
    raise ValueError(f"unknown Keystone API version {requested!r}: use 3 or 2.0")


def versioned_url(url: str, version: str, path: str | None = None) -> str:
    """``url`` without trailing slashes, with ``/v3`` or ``/v2.0`` (or ``/<path>``) appended
    when it does not already end in a version."""
    url = url.rstrip("/")
    if _VERSION_SUFFIX.search(url) or (path and url.endswith("/" + path.strip("/"))):
        return url
    return f"{url}/{(path or '').strip('/') or 'v' + version}"


def resolve(url: str, requested: str | None = None, paths: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(version, versioned URL) of a Keystone ``url``: a version path at its end wins (``paths``,
    version -> path such as ``identity/v3``, as well as ``/v3`` and ``/v2.0``), then ``requested``
    (as :func:`api_version`); a URL without one gets the version's path appended.

    :raise ValueError: ``requested`` names another version.
    """
    url = url.rstrip("/")
    given = {version: path.strip("/") for version, path in (paths or {}).items() if path.strip("/")}
    version_paths = {V3: "v3", V2: "v2.0", **given}
    for version, path in version_paths.items():
        if url.endswith("/" + path):
            return version, url
    version = api_version(url, requested)
    return version, versioned_url(url, version, path=version_paths[version])


def password_plugin(*, auth_url: str, version: str, username: str, password: str,
                    project_name: str | None = None, project_id: str | None = None,
                    user_domain_name: str = DEFAULT_DOMAIN,
                    project_domain_name: str = DEFAULT_DOMAIN) -> Any:
    """The keystoneauth1 password plugin for a versioned ``auth_url``.

    The project is named by ``project_name`` (in ``project_domain_name``) or, without a name, by
    ``project_id``; with neither the token is unscoped.
    """
    if version == V2:
        from keystoneauth1.identity import v2

        return v2.Password(auth_url=auth_url, username=username, password=password,
                           tenant_name=project_name or None,
                           tenant_id=None if project_name else (project_id or None))
    from keystoneauth1.identity import v3

    return v3.Password(auth_url=auth_url, username=username, password=password,
                       user_domain_name=user_domain_name,
                       project_name=project_name or None,
                       project_id=None if project_name else (project_id or None),
                       project_domain_name=project_domain_name if project_name else None)


def target_plugin(target: Any) -> Any:
    """The auth plugin of a glancesync target: the one openstacksdk's loader built for a
    clouds.yaml / ``OS_AUTH_TYPE`` credential (``target.cloud``), else the password plugin of its
    user, password, project and domains."""
    if target.cloud is not None:
        return target.cloud.auth_plugin()
    return password_plugin(auth_url=versioned_url(target.keystone_url, target.keystone_version),
                           version=target.keystone_version, username=target.user, password=target.password,
                           project_name=target.tenant, user_domain_name=target.user_domain_name,
                           project_domain_name=target.project_domain_name)


def target_secrets(target: Any) -> list[str]:
    """Every secret value of a target's credential (to scrub from messages)."""
    secrets = [target.password] if target.password else []
    if target.cloud is not None:
        secrets += target.cloud.secrets()
    return secrets


def session(plugin: Any, *, timeout: float, verify: bool | str = True, app_name: str = "glancesync") -> Any:
    """A keystoneauth1 session over ``plugin``: no request is made until it is used."""
    from keystoneauth1 import session as ks_session

    return ks_session.Session(auth=plugin, timeout=timeout, verify=verify, app_name=app_name)
