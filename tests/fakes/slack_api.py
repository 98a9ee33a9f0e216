"""A local fake of the Slack Web API: a real HTTP server speaking Slack's protocol.

slack-sdk clients point at it with ``base_url``. It answers the methods Switchboard uses, records
every call (method, token, arguments) and can answer the next calls of a method with HTTP 429 and
``Retry-After`` to exercise rate-limit handling. ``response_url`` posts land here too.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

BOT_TOKEN = "xoxb-fake-0000-token"
BOT_USER_ID = "UBOT0001"


@dataclass
class Call:
    """One Web API call as the fake received it."""

    method: str
    token: str | None
    args: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


class FakeSlackApi:
    """State and behaviour of the fake; ``url`` is the ``base_url`` for slack-sdk."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.rate_limit: dict[str, int] = {}  # method -> how many next calls get a 429
        self.oauth_codes: dict[str, dict[str, Any]] = {}
        self.users: dict[str, str] = {}  # user id -> real name (users.info)
        self._ts = itertools.count(1)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/"

    # ---------------------------------------------------------------- queries
    def of(self, method: str) -> list[Call]:
        """Calls of one method, in arrival order."""
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, method: str, count: int = 1, timeout: float = 15.0, **match: Any) -> list[Call]:
        """Block until ``count`` calls of ``method`` whose args contain ``match`` arrived; returns them."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [c for c in self.calls if c.method == method
                         and all(str(c.args.get(k)) == str(v) for k, v in match.items())]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} {method} calls matching {match}; got {len(found)}: "
                                         f"{[c.args for c in self.calls if c.method == method]}")
                self._changed.wait(left)

    # --------------------------------------------------------------- protocol
    def _answer(self, method: str, token: str | None, args: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._changed:
            self.calls.append(Call(method, token, args))
            self._changed.notify_all()
            if self.rate_limit.get(method, 0) > 0:
                self.rate_limit[method] -= 1
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"}
        if method.startswith("response_url/"):
            return 200, {"ok": True}, {}
        if method == "oauth.v2.access":
            grant = self.oauth_codes.pop(str(args.get("code")), None)
            return 200, grant or {"ok": False, "error": "invalid_code"}, {}
        if token is None:
            return 200, {"ok": False, "error": "not_authed"}, {}
        if method == "auth.test":
            return 200, {"ok": True, "user_id": BOT_USER_ID, "team_id": "T0001", "bot_id": "B0001"}, {}
        if method in ("chat.postMessage", "chat.postEphemeral"):
            ts = f"{int(time.time())}.{next(self._ts):06d}"
            return 200, {"ok": True, "channel": args.get("channel"), "ts": ts, "message_ts": ts}, {}
        if method == "chat.update":
            return 200, {"ok": True, "channel": args.get("channel"), "ts": args.get("ts")}, {}
        if method == "conversations.open":
            return 200, {"ok": True, "channel": {"id": "D" + str(args.get("users", "X")).lstrip("U")}}, {}
        if method == "users.info":
            user = str(args.get("user"))
            if user not in self.users:
                return 200, {"ok": False, "error": "user_not_found"}, {}
            name = self.users[user]
            return 200, {"ok": True, "user": {"id": user, "name": name.split()[0].lower(), "real_name": name,
                                              "profile": {"display_name": name, "real_name": name}}}, {}
        return 200, {"ok": False, "error": "unknown_method"}, {}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                if "json" in (self.headers.get("Content-Type") or ""):
                    args = json.loads(raw or "{}")
                else:
                    args = dict(parse_qsl(raw))
                if "?" in self.path:  # some slack-sdk methods send their arguments as query parameters
                    args.update(dict(parse_qsl(self.path.split("?", 1)[1])))
                for key in ("blocks", "attachments"):  # form-encoded calls carry JSON strings
                    if isinstance(args.get(key), str):
                        args[key] = json.loads(args[key])
                auth = self.headers.get("Authorization") or ""
                token = auth[7:] if auth.startswith("Bearer ") else args.get("token")
                path = self.path.split("?", 1)[0]
                method = path[len("/api/"):] if path.startswith("/api/") else "response_url" + path
                status, body, headers = fake._answer(method, token, args)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - users.info and friends are GET calls
                self.headers.replace_header("Content-Length", "0") if self.headers.get("Content-Length") else None
                self.do_POST()

            def log_message(self, *args: Any) -> None:
                return

        return Handler


@contextmanager
def running_fake_slack() -> Iterator[FakeSlackApi]:
    """Serve a fresh fake on a free port for the duration of the context."""
    fake = FakeSlackApi()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()
