"""A fake Keystone: the two calls the service makes (service authentication and token
validation), v3 and v2.0, answering from a table of issued tokens.

Mounted either on ``requests-mock`` (:func:`mount`, in-process tests) or on a real HTTP server
(:class:`KeystoneServer`, for a service in another process).  It counts what it is asked:
``requests`` (every call), ``service_logins`` and ``validations``.  Nothing here imports pytest,
so ``bench/api_load.py`` can use it too.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVICE_USER = "glancesync"
SERVICE_PASSWORD = "service-secret"
SERVICE_PROJECT = "service"

@dataclass
class IssuedToken:
    user: str
    roles: tuple[str, ...]
    expires: datetime
    project: str | None = "admin"


@dataclass
class FakeKeystone:
    """Answers POST/GET ``/v3/auth/tokens`` and POST ``/v2.0/tokens``, GET ``/v2.0/tokens/<id>``."""

    service_user: str = SERVICE_USER
    service_password: str = SERVICE_PASSWORD
    tokens: dict[str, IssuedToken] = field(default_factory=dict)
    validations: int = 0
    service_logins: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path) of every call
    lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self, user: str = "admin", roles: tuple[str, ...] = ("admin",), expires_in: float = 3600,
              project: str | None = "admin") -> str:
        token = uuid.uuid4().hex
        self.tokens[token] = IssuedToken(user, tuple(roles),
                                         datetime.now(timezone.utc) + timedelta(seconds=expires_in), project)
        return token

    def handle(self, method: str, path: str, headers, body: bytes) -> tuple[int, dict[str, str], dict | None]:
        """(status, headers, JSON body) for a request to ``path`` (without scheme and host)."""
        path = path.split("?", 1)[0].rstrip("/")
        with self.lock:
            self.requests.append((method, path))
        if method == "POST" and path.endswith("/v3/auth/tokens"):
            return self._login_v3(json.loads(body or b"{}"))
        if method == "GET" and path.endswith("/v3/auth/tokens"):
            return self._validate(headers.get("X-Subject-Token", ""), headers, self._body_v3)
        if method == "POST" and path.endswith("/v2.0/tokens"):
            return self._login_v2(json.loads(body or b"{}"))
        if method == "GET" and "/v2.0/tokens/" in path:
            return self._validate(path.rsplit("/", 1)[1], headers, self._body_v2)
        return 404, {}, _error(404, f"no such fake Keystone call: {method} {path}")

    def _login_v3(self, request: dict) -> tuple[int, dict[str, str], dict | None]:
        user = request.get("auth", {}).get("identity", {}).get("password", {}).get("user", {})
        if user.get("name") != self.service_user or user.get("password") != self.service_password:
            return 401, {}, _error(401, "The request you have made requires authentication.")
        with self.lock:
            self.service_logins += 1
        token = self.issue(self.service_user, ("admin", "service"), project=SERVICE_PROJECT)
        return 201, {"X-Subject-Token": token}, self._body_v3(token)

    def _login_v2(self, request: dict) -> tuple[int, dict[str, str], dict | None]:
        creds = request.get("auth", {}).get("passwordCredentials", {})
        if creds.get("username") != self.service_user or creds.get("password") != self.service_password:
            return 401, {}, _error(401, "The request you have made requires authentication.")
        with self.lock:
            self.service_logins += 1
        token = self.issue(self.service_user, ("admin", "service"), project=SERVICE_PROJECT)
        return 200, {}, self._body_v2(token)

    def _validate(self, subject: str, headers, render) -> tuple[int, dict[str, str], dict | None]:
        caller = self.tokens.get(headers.get("X-Auth-Token", ""))
        if caller is None or caller.user != self.service_user:
            return 401, {}, _error(401, "The request you have made requires authentication.")
        with self.lock:
            self.validations += 1
        if subject not in self.tokens:
            return 404, {}, _error(404, f"Could not find token: {subject}")
        return 200, {"X-Subject-Token": subject}, render(subject)

    def _body_v3(self, token: str) -> dict:
        issued = self.tokens[token]
        body: dict = {
            "methods": ["password"],
            "expires_at": issued.expires.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
            "issued_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
            "user": {"id": f"{issued.user}-id", "name": issued.user,
                     "domain": {"id": "default", "name": "Default"}},
            "audit_ids": [token[:22]],
        }
        if issued.project is not None:
            body["project"] = {"id": f"{issued.project}-id", "name": issued.project,
                               "domain": {"id": "default", "name": "Default"}}
            body["roles"] = [{"id": f"{r}-id", "name": r} for r in issued.roles]
            body["catalog"] = []
        return {"token": body}

    def _body_v2(self, token: str) -> dict:
        issued = self.tokens[token]
        access: dict = {
            "token": {"id": token, "expires": issued.expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "issued_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000000")},
            "user": {"id": f"{issued.user}-id", "name": issued.user, "username": issued.user,
                     "roles": [{"name": r} for r in issued.roles]},
            "serviceCatalog": [],
        }
        if issued.project is not None:
            access["token"]["tenant"] = {"id": f"{issued.project}-id", "name": issued.project, "enabled": True}
        return {"access": access}


def _error(code: int, message: str) -> dict:
    return {"error": {"code": code, "message": message, "title": "Error"}}


class KeystoneServer:
    """A :class:`FakeKeystone` on a real HTTP port of 127.0.0.1 (in a thread of this process)."""

    def __init__(self, keystone: FakeKeystone | None = None):
        self.keystone = keystone or FakeKeystone()
        model = self.keystone

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = model.handle(self.command, self.path, self.headers, body)
                data = json.dumps(payload).encode() if payload is not None else b""
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-keystone", daemon=True)

    def __enter__(self) -> "KeystoneServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def mount(requests_mock, keystone: FakeKeystone, base_url: str) -> FakeKeystone:
    """Answer every request under ``base_url`` with ``keystone`` (a requests-mock ``Mocker``)."""
    import requests_mock as requests_mock_module

    def answer(request, context):
        status, headers, body = keystone.handle(request.method, request.path_url, request.headers,
                                                request.body or b"")
        context.status_code = status
        context.headers.update(headers)
        return body

    requests_mock.register_uri(requests_mock_module.ANY, re.compile(re.escape(base_url) + "/.*"), json=answer)
    return keystone
