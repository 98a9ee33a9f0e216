"""Bearer-token authentication of the admin API (until user accounts with roles exist)."""

from __future__ import annotations

import hmac

from fastapi import Header, Request

from gateway.api.deps import services_of
from gateway.api.errors import ApiError


def require_admin(request: Request, authorization: str | None = Header(default=None)) -> None:
    """Dependency: the caller presents ``Authorization: Bearer <SWITCHBOARD_ADMIN_TOKEN>``.

    Raises:
        ApiError: 503 when no admin token is configured, 401 for a missing or wrong token.
    """
    expected = services_of(request).settings.admin_token
    if expected is None:
        raise ApiError(503, "admin_disabled", "the admin API is off: set SWITCHBOARD_ADMIN_TOKEN (make env does)")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "missing_admin_token", "send Authorization: Bearer <admin token>")
    if not hmac.compare_digest(token.strip().encode(), expected.get_secret_value().encode()):
        raise ApiError(401, "bad_admin_token", "the admin token is wrong")
