"""Authentication of agents: session cookie (console, CSRF-checked) or bearer token (API clients)."""

from __future__ import annotations

import hmac
import time
from collections import defaultdict, deque
from dataclasses import dataclass

from fastapi import Header, Request

from gateway.api.deps import services_of
from gateway.api.errors import ApiError
from gateway.stores.agent_store import AgentRecord

SESSION_COOKIE = "sb_agent"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


@dataclass(frozen=True)
class AgentPrincipal:
    """The authenticated agent of a request and how they authenticated."""

    agent: AgentRecord
    token: str
    csrf_token: str
    via_cookie: bool


def _token_from(request: Request, authorization: str | None) -> tuple[str | None, bool]:
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), False
    return request.cookies.get(SESSION_COOKIE), True


def current_agent(request: Request, authorization: str | None = Header(default=None),
                  x_csrf_token: str | None = Header(default=None)) -> AgentPrincipal:
    """Dependency: the logged-in agent.

    Cookie-authenticated writes must carry the session's CSRF token in ``X-CSRF-Token`` (a page
    on another site can make the browser send the cookie, but cannot read the token); bearer
    tokens are not sent by browsers on their own, so they need no CSRF token.

    Raises:
        ApiError: 401 without a valid session, 403 for a missing or wrong CSRF token.
    """
    token, via_cookie = _token_from(request, authorization)
    if not token:
        raise ApiError(401, "not_logged_in", "log in first (session cookie or Authorization: Bearer <token>)")
    resolved = services_of(request).agents.resolve_session(token)
    if resolved is None:
        raise ApiError(401, "session_expired", "the session is unknown or expired; log in again")
    agent, csrf = resolved
    if via_cookie and request.method not in _SAFE_METHODS:
        if not x_csrf_token or not hmac.compare_digest(x_csrf_token.encode(), csrf.encode()):
            raise ApiError(403, "csrf_failed", f"send the session's CSRF token in {CSRF_HEADER}")
    return AgentPrincipal(agent, token, csrf, via_cookie)


def require_role(principal: AgentPrincipal, role: str) -> None:
    """Raise 403 unless the agent has ``role`` or a higher one."""
    if not principal.agent.at_least(role):
        raise ApiError(403, "forbidden", f"this needs the {role} role")


class LoginThrottle:
    """Slows password guessing without letting anyone lock others out.

    Failures count per account *from one address* (5 in the window block that pair) and per account
    from everywhere (20 block the account: a guessing botnet). An address is never blocked as a
    whole: failures for accounts that do not exist, or for other people's accounts, do not lock out
    the agents who share that address (an office, a proxy).
    """

    def __init__(self, max_failures: int = 5, window_s: float = 300.0, account_factor: int = 4) -> None:
        self._max = max_failures
        self._account_max = max_failures * account_factor
        self._window = window_s
        self._failures: defaultdict[str, deque[float]] = defaultdict(deque)

    def _recent(self, key: str) -> deque[float]:
        stamps = self._failures[key]
        cutoff = time.monotonic() - self._window
        while stamps and stamps[0] < cutoff:
            stamps.popleft()
        return stamps

    def blocked(self, account: str, address: str) -> bool:
        """Whether this account may not try again now, from this address or at all."""
        return (len(self._recent(f"{account}|{address}")) >= self._max
                or len(self._recent(account)) >= self._account_max)

    def failed(self, account: str, address: str) -> None:
        """Count a failed login of ``account`` from ``address``."""
        self._recent(f"{account}|{address}").append(time.monotonic())
        self._recent(account).append(time.monotonic())

    def succeeded(self, account: str, address: str) -> None:
        """Forget the account's failures after a good login."""
        self._failures.pop(account, None)
        self._failures.pop(f"{account}|{address}", None)
