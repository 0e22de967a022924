"""Client-library exceptions -> :class:`FacadeError` subclasses, with messages free of secrets.

A message names the region and the image in the original's wording (``{region}: Upload of
{name} Failed. Cause: ...``) and never contains the password or a token: :func:`clean` makes
the one-line cause, :func:`translated` raises the engine's error carrying it.
"""

from __future__ import annotations

import html
import re
from contextlib import contextmanager
from typing import Any, Callable

from keystoneauth1 import exceptions as ks_exc

from ... import keystone
from ...config import Target
from ...errors import FacadeError, GlanceSyncError, ImageNotFound, ListingTimeout, RegionNotFound
from .library_errors import client_errors, glance_exc, is_not_found, is_timeout, transport_errors

MAX_CAUSE_LENGTH = 400  # Glance's schema errors run to kilobytes; the start says what is wrong

# "X-Auth-Token: abc", "'password': 'abc'", "password=abc": the value goes, the name stays.
_SECRET_FIELD = re.compile(r"((?:x-auth-token|x-subject-token|x-service-token|password)['\"]?\s*[:=]\s*['\"]?)"
                           r"[^\s'\",}]+", re.IGNORECASE)


@contextmanager
def translated(prefix: str, region: str | None, clean_cause: Callable[[BaseException], str],
               error: type[FacadeError] = FacadeError, timeout_message: str | None = None):
    """Turn client-library exceptions into ``error(prefix + clean_cause(exc))`` (RegionNotFound
    for a region without an image endpoint, ImageNotFound for a missing image, ListingTimeout
    with ``timeout_message`` for a timeout when one is given), ``unreachable`` when the server
    did not answer; engine errors and anything else (bugs) pass unchanged."""
    try:
        yield
    except GlanceSyncError:
        raise
    except client_errors() as exc:
        if timeout_message and is_timeout(exc):
            raise ListingTimeout(timeout_message, region) from None
        if isinstance(exc, ks_exc.EndpointNotFound):
            kind = RegionNotFound
        elif is_not_found(exc):
            kind = ImageNotFound
        else:
            kind = error
        raise kind(prefix + clean_cause(exc), region, unreachable=isinstance(exc, transport_errors())) from None


def clean(exc: BaseException, target: Target, session: Any) -> str:
    """One line describing ``exc``, unescaped, shortened, without the credentials of ``target``
    nor the token of ``session`` (a keystoneauth Session, or None before there is one)."""
    if isinstance(exc, ks_exc.Unauthorized):
        cloud = target.cloud
        of = f" (cloud {cloud.name!r} of {cloud.source})" if cloud is not None else ""
        auth_url = keystone.versioned_url(target.keystone_url, target.keystone_version)
        text = f"Keystone {auth_url} rejected the credentials of target {target.name}{of} (HTTP 401)"
    elif isinstance(exc, ks_exc.EndpointNotFound):
        text = f"no public image endpoint in the catalog of target {target.name} ({exc})"
    else:
        text = str(exc) or repr(exc)
        status = getattr(exc, "status_code", None)
        if isinstance(exc, glance_exc.HTTPException) and status and not text.startswith(f"HTTP {status}"):
            text = f"HTTP {status} {text.removeprefix('HTTP ')}"  # glanceclient's generic class says no status
    text = " ".join(html.unescape(text).split())
    text = scrub(text, target, session)
    if len(text) > MAX_CAUSE_LENGTH:
        text = text[:MAX_CAUSE_LENGTH] + "..."
    return text


def shortened(message: Any) -> str:
    """A server's free-text message on one line, unescaped, at most MAX_CAUSE_LENGTH long."""
    return " ".join(html.unescape(str(message)).split())[:MAX_CAUSE_LENGTH]


def scrub(text: str, target: Target, session: Any) -> str:
    """Remove the password and any token from a message."""
    secrets = keystone.target_secrets(target)
    auth_ref = getattr(getattr(session, "auth", None), "auth_ref", None)
    secrets.append(getattr(auth_ref, "auth_token", None))
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _SECRET_FIELD.sub(lambda match: match.group(1) + "***", text)
