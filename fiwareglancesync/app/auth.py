"""``X-Auth-Token`` validation against Keystone: the only module of the service that does it.

A request is authorised when Keystone (v3 by default, v2.0 when configured) confirms its token
and the token carries the ``admin`` role.  The service talks to Keystone with its own credentials
(``[openstack]`` of fiware-glancesync.cfg) through a keystoneauth1 session built by
:mod:`fiwareglancesync.glancesync.keystone` (the same plugin rules as the engine's targets),
which keeps the service token and re-authenticates when it is refused.

Outcomes, as :class:`~fiwareglancesync.app.errors.ApiError` (the one module that raises it: a
token check's outcome is an HTTP status by nature, 401 for the caller's token, 5xx for Keystone
trouble, so it carries its code rather than going through a domain error):

* 401: no header, empty token, token unknown to Keystone or expired, token without roles,
  token without ``admin``; the message says which;
* 500: Keystone refuses the service credentials (a configuration problem, not the caller's);
* 502: Keystone answers the validation with an unexpected error;
* 503: Keystone cannot be reached.

Validated tokens are cached in the process until shortly before they expire, and for at most
``TOKEN_CACHE_SECONDS`` so that a revoked token stops working within that time.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Mapping, Protocol, TypeVar

from flask import current_app, g, request
from keystoneauth1 import exceptions as ks_exc
# Imported with the module, not at the first request: gunicorn's master imports this before it
# forks the workers, which then share it instead of each importing it on its first token.
from keystoneclient.v2_0 import client as ks_client_v2
from keystoneclient.v3 import client as ks_client_v3

from ..glancesync import keystone
from ..glancesync.errors import one_line
from .coalesce import SharedCalls
from .errors import ApiError

LOG = logging.getLogger("glancesync.app.auth")

TOKEN_HEADER = "X-Auth-Token"
REQUIRED_ROLE = "admin"
# A token this close to its expiry is not cached: it would stop working while still cached.
EXPIRY_MARGIN_SECONDS = 30
CACHE_MAX_ENTRIES = 4096

NO_TOKEN = f"The request you have made requires authentication: no {TOKEN_HEADER} header"
EMPTY_TOKEN = "Token is empty"
INVALID_TOKEN = "The token is not valid (unknown to Keystone, revoked or expired)"
EXPIRED_TOKEN = "The token has expired"
NO_ROLES = "User hasn't defined roles"
NOT_ADMIN = "Role is not admin"
BAD_SERVICE_CREDENTIALS = ("You should have defined the correct admin user and its password in the "
                           "configuration file (fiware-glancesync.cfg)")

# Keystone's answers that refuse what was asked (a token, a login), and those that mean it was not reached.
REFUSED = (ks_exc.NotFound, ks_exc.Unauthorized, ks_exc.BadRequest)
UNREACHABLE = (ks_exc.ConnectFailure, ks_exc.ConnectTimeout, ks_exc.RequestTimeout)


@contextmanager
def keystone_outcomes(where: str, failure: str, *, refused: tuple[type[Exception], ...] = (),
                      refusal: Callable[[], ApiError] | None = None) -> Iterator[None]:
    """The Keystone calls inside, with keystoneauth's exceptions as the service's errors: one
    of ``refused`` -> ``refusal()``; Keystone not reached -> 503 "<where> cannot be reached";
    any other Keystone failure -> 502 "<where> <failure>: <cause>".  (Also used by the status
    page's login.)"""
    try:
        yield
    except ks_exc.ClientException as exc:
        if refusal is not None and isinstance(exc, refused):
            raise refusal() from None
        if isinstance(exc, UNREACHABLE):
            raise ApiError(503, f"{where} cannot be reached: {type(exc).__name__}") from None
        raise ApiError(502, f"{where} {failure}: {one_line(exc)}") from None


def aware(expires: datetime) -> datetime:
    """A token's expiry as an aware datetime (keystoneauth gives naive UTC for some versions)."""
    return expires if expires.tzinfo is not None else expires.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class TokenInfo:
    """What the service keeps of a validated token."""

    user: str
    user_id: str | None
    project: str | None
    roles: frozenset[str]
    expires: datetime  # aware, UTC


class TokenValidator(Protocol):
    def validate(self, token: str) -> TokenInfo:
        """Keystone's view of ``token``; raises ApiError (401 unknown/expired, 5xx Keystone trouble)."""
        ...


class KeystoneTokenValidator:
    """Validates tokens with python-keystoneclient, authenticated as the service user."""

    def __init__(self, *, auth_url: str, api_version: str, user: str, password: str,
                 project: str, project_id: str, user_domain_name: str, project_domain_name: str,
                 timeout: float, ca_file: str):
        self.auth_url = auth_url
        self.api_version = api_version
        self._credentials = dict(user=user, password=password, project=project, project_id=project_id,
                                 user_domain_name=user_domain_name, project_domain_name=project_domain_name)
        self._timeout = timeout
        self._verify: bool | str = ca_file or True
        self._lock = threading.Lock()
        self._session = None
        self._client = None

    def validate(self, token: str) -> TokenInfo:
        if not self.auth_url:
            raise ApiError(500, "The service has no Keystone URL configured ([openstack] KEYSTONE_URL)")
        session, client = self._connect()
        where = f"Keystone at {self.auth_url}"
        with keystone_outcomes(where, "failed the service authentication", refused=(ks_exc.Unauthorized,),
                               refusal=self._service_credentials_refused):
            session.get_token()
        with keystone_outcomes(where, "failed to validate the token", refused=REFUSED,
                               refusal=lambda: ApiError(401, INVALID_TOKEN)):
            if self.api_version == keystone.V2:
                access = client.tokens.validate_access_info(token)
            else:
                access = client.tokens.validate(token, include_catalog=False)
        return TokenInfo(user=access.username or access.user_id or "?", user_id=access.user_id,
                         project=access.project_name, roles=frozenset(access.role_names or ()),
                         expires=aware(access.expires))

    def _service_credentials_refused(self) -> ApiError:
        LOG.error("Keystone %s refused the service credentials of fiware-glancesync.cfg", self.auth_url)
        return ApiError(500, BAD_SERVICE_CREDENTIALS)

    def _connect(self):
        with self._lock:
            if self._session is None:
                self._session, self._client = self._build()
            return self._session, self._client

    def _build(self):
        creds = self._credentials
        ks_client = ks_client_v2 if self.api_version == keystone.V2 else ks_client_v3
        plugin = keystone.password_plugin(
            auth_url=self.auth_url, version=self.api_version, username=creds["user"], password=creds["password"],
            project_name=creds["project"] or None, project_id=creds["project_id"] or None,
            user_domain_name=creds["user_domain_name"], project_domain_name=creds["project_domain_name"])
        session = keystone.session(plugin, timeout=self._timeout, verify=self._verify, app_name="glancesync-api")
        # Validate against the configured URL itself, as the original did, not a catalog entry.
        client = ks_client.Client(session=session, endpoint_override=self.auth_url, interface="public")
        return session, client


class TokenCache:
    """Validated tokens of this process, keyed by a hash of the token (the token is not kept)."""

    def __init__(self, max_seconds: float, clock: Callable[[], float] = time.time,
                 max_entries: int = CACHE_MAX_ENTRIES):
        self.max_seconds = max_seconds
        self.clock = clock
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, TokenInfo]] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> TokenInfo | None:
        key = _key(token)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= self.clock():
                del self._entries[key]
                return None
            return entry[1]

    def put(self, token: str, info: TokenInfo) -> None:
        now = self.clock()
        until = min(info.expires.timestamp() - EXPIRY_MARGIN_SECONDS, now + self.max_seconds)
        if until <= now:
            return
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
                while len(self._entries) >= self.max_entries:
                    del self._entries[next(iter(self._entries))]
            self._entries[_key(token)] = (until, info)


class Authenticator:
    """Token validation with caching and the role check; one per app.

    Requests of a process (gunicorn's threads) that bring the same token while Keystone is
    validating it wait for that validation instead of asking Keystone again."""

    def __init__(self, validator: TokenValidator, cache: TokenCache):
        self.validator = validator
        self.cache = cache
        self._validations: SharedCalls[TokenInfo] = SharedCalls(fresh=False)

    def _validate(self, token: str) -> TokenInfo:
        def validate() -> TokenInfo:
            info = self.validator.validate(token)
            if info.expires > datetime.now(timezone.utc):
                self.cache.put(token, info)  # before the next request can miss both
            return info

        # Bounded by the validator's own timeouts (and the caller's bound).
        return self._validations.call(_key(token), validate)

    def authenticate(self, header_value: str | None,
                     bound: Callable[[Callable[[], TokenInfo]], TokenInfo] | None = None) -> TokenInfo:
        """The caller's token info; ApiError 401 (or 5xx) when the request is not authorised.

        ``bound(call)`` runs a validation Keystone must answer (default: ``call()``; the views
        pass :func:`~.bounded.call_bounded`, so a Keystone that does not answer is a 503 within
        REQUEST_TIMEOUT)."""
        if header_value is None:
            raise ApiError(401, NO_TOKEN)
        token = header_value.strip()
        if not token:
            raise ApiError(401, EMPTY_TOKEN)
        info = self.cache.get(token)
        if info is None:
            validate = functools.partial(self._validate, token)
            info = bound(validate) if bound is not None else validate()
            if info.expires <= datetime.now(timezone.utc):
                raise ApiError(401, EXPIRED_TOKEN)
            self.cache.put(token, info)
        if not info.roles:
            raise ApiError(401, NO_ROLES)
        if REQUIRED_ROLE not in info.roles:
            LOG.info("refused token of user %s (project %s): roles %s", info.user, info.project,
                     ",".join(sorted(info.roles)))
            raise ApiError(401, NOT_ADMIN)
        return info


def authenticator_from_config(config: Mapping[str, Any]) -> Authenticator:
    """The Authenticator for a Flask config: its KEYSTONE_* and TOKEN_* keys (every one present,
    as in an app's config, which starts from ``settings.DEFAULT_CONFIG``)."""
    validator = config["TOKEN_VALIDATOR"] or KeystoneTokenValidator(
        auth_url=config["KEYSTONE_AUTH_URL"],
        api_version=config["KEYSTONE_API_VERSION"],
        user=config["KEYSTONE_ADMIN_USER"],
        password=config["KEYSTONE_ADMIN_PASSWORD"],
        project=config["KEYSTONE_ADMIN_PROJECT"],
        project_id=config["KEYSTONE_ADMIN_PROJECT_ID"],
        user_domain_name=config["KEYSTONE_USER_DOMAIN_NAME"],
        project_domain_name=config["KEYSTONE_PROJECT_DOMAIN_NAME"],
        timeout=config["KEYSTONE_TIMEOUT"],
        ca_file=config["KEYSTONE_CA_FILE"],
    )
    return Authenticator(validator, TokenCache(config["TOKEN_CACHE_SECONDS"]))


View = TypeVar("View", bound=Callable)


def admin_required(view: View) -> View:
    """Run ``view`` only for a request whose token carries ``admin``; ``g.token`` is its TokenInfo.

    :raise ApiError 401: no/empty/invalid/expired token, or no ``admin`` role.
    """

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        from .bounded import call_bounded

        authenticator: Authenticator = current_app.extensions["glancesync"].authenticator
        g.token = authenticator.authenticate(request.headers.get(TOKEN_HEADER),
                                             lambda call: call_bounded("validating the token with Keystone", call))
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()

