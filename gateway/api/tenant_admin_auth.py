"""Who may administer a tenant: its own admins (agent accounts with role ``admin``), nobody else.

The platform-wide ``SWITCHBOARD_ADMIN_TOKEN`` is the operator's: it creates tenants and changes plans
(``admin_auth.require_admin``) and opens nothing of a tenant's. A tenant admin signs in once (the
console's login: session cookie, or the session token as a bearer token for API clients) and reaches
every admin route of its own tenant. Another tenant's routes answer 404, exactly as for a tenant that
does not exist, so an admin cannot even learn which tenants exist.
"""

from __future__ import annotations

from fastapi import Header, Request

from gateway.api.agent_auth import AgentPrincipal, current_agent
from gateway.api.errors import ApiError


def require_tenant_admin(tenant: str, request: Request, authorization: str | None = Header(default=None),
                         x_csrf_token: str | None = Header(default=None)) -> AgentPrincipal:
    """Dependency of every ``/api/v1/admin/tenants/{tenant}/…`` route: an admin of ``tenant``.

    Raises:
        ApiError: 401 without a live session (the operator token is not one), 404 for another tenant's
            route, 403 for an agent of the tenant without the admin role, 403 for a cookie write
            without the CSRF token.
    """
    principal = current_agent(request, authorization, x_csrf_token)
    if principal.agent.tenant_id != tenant:
        raise ApiError(404, "unknown_tenant", f"no tenant {tenant!r}")
    if not principal.agent.at_least("admin"):
        raise ApiError(403, "forbidden", "this needs the admin role of the tenant")
    return principal
