"""The agent API: everything the console does, for the console and for a company's own helpdesk."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from gateway.api.agent_auth import SESSION_COOKIE, AgentPrincipal, LoginThrottle, current_agent, require_role
from gateway.api.deps import get_services
from gateway.api.errors import ApiError
from gateway.handoff.context_packet import build_context
from gateway.handoff.policy import HandoffPolicy
from gateway.handoff.states import OPEN_STATES, HandoffConflictError, HandoffRuleError
from gateway.billing.plans import Unit
from gateway.services import GatewayServices
from gateway.stores.agent_store import AgentExistsError, SeatLimitError

PREFIX = "/api/v1/agent"
router = APIRouter(prefix=PREFIX, tags=["agents"])

_RULE_STATUS = {"not_owner": 403, "forbidden": 403, "wrong_team": 403, "unknown_handoff": 404,
                "unknown_agent": 404, "unknown_conversation": 404, "not_in_handoff": 409, "capacity_full": 409}


@contextmanager
def handoff_errors() -> Iterator[None]:
    """Answer handoff conflicts with 409 and rule violations with their status (403/404/409/422)."""
    try:
        yield
    except HandoffConflictError as exc:
        raise ApiError(409, "conflict", exc.detail) from exc
    except HandoffRuleError as exc:
        raise ApiError(_RULE_STATUS.get(exc.code, 422), exc.code, exc.detail) from exc


class LoginBody(BaseModel):
    tenant: str = Field(min_length=1, max_length=64)
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=200)
    # The console signs in to take conversations (online); the admin pages sign in to configure, which
    # must not put an admin into the handoff rotation.
    available: bool = True


class TextBody(BaseModel):
    text: str = Field(max_length=4000)


class TypingBody(BaseModel):
    on: bool


class StatusBody(BaseModel):
    status: str


class TransferBody(BaseModel):
    to_agent: str | None = None
    to_team: str | None = None


class ResolveBody(BaseModel):
    label: str = Field(min_length=1, max_length=64)
    note: str | None = Field(default=None, max_length=4000)


class NewAgentBody(BaseModel):
    email: str = Field(min_length=3, max_length=254)
    display_name: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=200)
    role: str = "agent"
    teams: list[str] = Field(default_factory=list)
    capacity: int = 3


class WebhookBody(BaseModel):
    url: str = Field(min_length=8, max_length=1000)


def _text(body: TextBody) -> str:
    if not body.text.strip():
        raise ApiError(422, "empty_message", "text must not be empty")
    return body.text


@router.post("/login")
async def login(body: LoginBody, request: Request, response: Response,
                services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """Log in: sets the HttpOnly session cookie and returns the token and CSRF token."""
    throttle: LoginThrottle = request.app.state.login_throttle
    account = f"{body.tenant}:{body.email.strip().lower()}"
    address = f"ip:{request.client.host if request.client else '?'}"
    if throttle.blocked(account, address):
        raise ApiError(429, "too_many_attempts", "too many failed logins; wait a few minutes")
    agent = await run_in_threadpool(services.agents.authenticate, body.tenant, body.email, body.password)
    if agent is None:
        throttle.failed(account, address)
        raise ApiError(401, "bad_credentials", "wrong tenant, e-mail or password")
    throttle.succeeded(account, address)
    grant = await run_in_threadpool(services.agents.start_session, agent)
    status = agent.status
    if body.available:
        status = "online"
        await run_in_threadpool(services.agents.set_status, agent.tenant_id, agent.id, status)
    response.set_cookie(SESSION_COOKIE, grant.token, httponly=True, samesite="strict", path="/",
                        secure=services.settings.secure_cookies,
                        max_age=services.settings.agent_session_hours * 3600)
    if body.available:
        await services.handoff.auto_assign(agent.tenant_id)
    return {"agent": {**agent.to_public(), "status": status}, "token": grant.token,
            "csrf_token": grant.csrf_token, "expires_at": grant.expires_at.isoformat()}


@router.post("/logout")
async def logout(response: Response, principal: AgentPrincipal = Depends(current_agent),
                 services: GatewayServices = Depends(get_services)) -> dict[str, bool]:
    """End the session (and go offline)."""
    await run_in_threadpool(services.agents.end_session, principal.token)
    await run_in_threadpool(services.agents.set_status, principal.agent.tenant_id, principal.agent.id, "offline")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return {"ok": True}


@router.get("/me")
async def me(principal: AgentPrincipal = Depends(current_agent),
             services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """The logged-in agent, the CSRF token for the console, and the tenant's teams and labels."""
    policy = await run_in_threadpool(services.handoff.policies.get, principal.agent.tenant_id)
    return {"agent": principal.agent.to_public(), "tenant": principal.agent.tenant_id,
            "csrf_token": principal.csrf_token, "teams": policy.teams, "resolution_labels": policy.resolution_labels}


@router.put("/me/status")
async def set_status(body: StatusBody, principal: AgentPrincipal = Depends(current_agent),
                     services: GatewayServices = Depends(get_services)) -> dict[str, str]:
    """Presence: online agents get conversations assigned automatically."""
    try:
        await run_in_threadpool(services.agents.set_status, principal.agent.tenant_id, principal.agent.id, body.status)
    except ValueError as exc:
        raise ApiError(422, "invalid_status", str(exc)) from exc
    if body.status == "online":
        await services.handoff.auto_assign(principal.agent.tenant_id)
    services.hub.publish(f"agents:{principal.agent.tenant_id}", {"type": "queue_changed"})
    return {"status": body.status}


@router.get("/queue")
async def queue(principal: AgentPrincipal = Depends(current_agent),
                services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """Waiting conversations in serving order, and the open ones with agents."""
    tenant = principal.agent.tenant_id
    entries = await services.handoff.queue(tenant)
    open_handoffs = await run_in_threadpool(
        lambda: services.handoff.handoffs.list(tenant, [s for s in OPEN_STATES if s.value != "queued"]))
    agents = {a.id: a for a in await run_in_threadpool(services.agents.list, tenant)}

    def customer_of(conversation_id: str) -> dict[str, Any] | None:
        return services.conversations.customer(tenant, conversation_id)

    waiting = []
    for entry in entries:
        waiting.append({**entry.handoff.to_public(), "position": entry.position, "eta_s": entry.eta_s,
                        "effective_priority": round(entry.effective_priority, 2),
                        "customer": await run_in_threadpool(customer_of, entry.handoff.conversation_id)})
    active = [{**h.to_public(), "agent_name": agents[h.agent_id].display_name if h.agent_id in agents else None,
               "mine": h.agent_id == principal.agent.id,
               "customer": await run_in_threadpool(customer_of, h.conversation_id)} for h in open_handoffs]
    return {"waiting": waiting, "active": active}


@router.get("/conversations/{conversation_id}")
async def conversation(conversation_id: str, principal: AgentPrincipal = Depends(current_agent),
                       services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """Transcript plus the context packet (customer, trail, KB answers seen, escalation, notes)."""
    tenant = principal.agent.tenant_id

    def load() -> dict[str, Any] | None:
        info = services.conversations.info(tenant, conversation_id)
        if info is None:
            return None
        handoff = services.handoff.handoffs.latest_for_conversation(tenant, conversation_id)
        return build_context(info, handoff, services.conversations.history(tenant, conversation_id),
                             services.handoff.handoffs.transitions(tenant, conversation_id),
                             services.handoff.handoffs.notes(tenant, conversation_id))

    packet = await run_in_threadpool(load)
    if packet is None:
        raise ApiError(404, "unknown_conversation", "no such conversation")
    return packet


@router.post("/handoffs/{handoff_id}/claim")
async def claim(handoff_id: str, principal: AgentPrincipal = Depends(current_agent),
                services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """Take a queued conversation. 409 when another agent was first."""
    with handoff_errors():
        return (await services.handoff.claim(principal.agent, handoff_id)).to_public()


@router.post("/conversations/{conversation_id}/messages")
async def reply(conversation_id: str, body: TextBody, principal: AgentPrincipal = Depends(current_agent),
                services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """Write to the customer (only the assigned agent)."""
    with handoff_errors():
        return (await services.handoff.reply(principal.agent, conversation_id, _text(body))).to_public()


@router.post("/conversations/{conversation_id}/typing")
async def typing(conversation_id: str, body: TypingBody, principal: AgentPrincipal = Depends(current_agent),
                 services: GatewayServices = Depends(get_services)) -> dict[str, bool]:
    """Show or hide the typing indicator in the customer's widget."""
    handoff = await run_in_threadpool(services.handoff.handoffs.open_for_conversation, principal.agent.tenant_id,
                                      conversation_id)
    if handoff is None or handoff.agent_id != principal.agent.id:
        raise ApiError(403, "not_owner", "only the assigned agent can type in this conversation")
    services.handoff.typing(principal.agent, conversation_id, body.on)
    return {"ok": True}


@router.post("/conversations/{conversation_id}/notes")
async def add_note(conversation_id: str, body: TextBody, principal: AgentPrincipal = Depends(current_agent),
                   services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """An internal note, visible to agents only."""
    with handoff_errors():
        return await services.handoff.note(principal.agent, conversation_id, _text(body))


@router.post("/conversations/{conversation_id}/takeover")
async def take_over(conversation_id: str, principal: AgentPrincipal = Depends(current_agent),
                    services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """A supervisor takes a conversation away from the bot."""
    if not await run_in_threadpool(services.conversations.exists, principal.agent.tenant_id, conversation_id):
        raise ApiError(404, "unknown_conversation", "no such conversation")
    with handoff_errors():
        return (await services.handoff.take_over(principal.agent, conversation_id)).to_public()


@router.post("/handoffs/{handoff_id}/transfer")
async def transfer(handoff_id: str, body: TransferBody, principal: AgentPrincipal = Depends(current_agent),
                   services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """Move a conversation to another agent or a team's queue."""
    with handoff_errors():
        return (await services.handoff.transfer(principal.agent, handoff_id, to_agent=body.to_agent,
                                                to_team=body.to_team)).to_public()


@router.post("/handoffs/{handoff_id}/resolve")
async def resolve(handoff_id: str, body: ResolveBody, principal: AgentPrincipal = Depends(current_agent),
                  services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """Close with a resolution label; the bot takes the conversation back."""
    with handoff_errors():
        return (await services.handoff.resolve(principal.agent, handoff_id, body.label, body.note)).to_public()


@router.get("/agents")
async def list_agents(principal: AgentPrincipal = Depends(current_agent),
                      services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """The tenant's agents with their current load (transfer targets)."""
    tenant = principal.agent.tenant_id
    loads = await run_in_threadpool(services.handoff.handoffs.agent_loads, tenant)
    return {"agents": [{**a.to_public(), "load": loads.get(a.id, 0)}
                       for a in await run_in_threadpool(services.agents.list, tenant)]}


@router.post("/agents", status_code=201)
async def create_agent(body: NewAgentBody, principal: AgentPrincipal = Depends(current_agent),
                       services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """Add an agent (admins only)."""
    require_role(principal, "admin")
    tenant = principal.agent.tenant_id
    limit = await run_in_threadpool(services.usage.gauge_limit, tenant, Unit.AGENT_SEATS)
    try:
        agent = await run_in_threadpool(
            lambda: services.agents.create(principal.agent.tenant_id, body.email, body.display_name, body.password,
                                           body.role, body.teams, body.capacity, seat_limit=limit))
    except SeatLimitError as exc:
        raise ApiError(402, "plan_limit", str(exc), limit=exc.limit, in_use=exc.in_use) from exc
    except AgentExistsError as exc:
        raise ApiError(409, "agent_exists", str(exc)) from exc
    except ValueError as exc:
        raise ApiError(422, "invalid_agent", str(exc)) from exc
    return agent.to_public()


@router.get("/policy")
async def get_policy(principal: AgentPrincipal = Depends(current_agent),
                     services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """The tenant's handoff policy."""
    return (await run_in_threadpool(services.handoff.policies.get, principal.agent.tenant_id)).model_dump()


@router.put("/policy")
async def put_policy(body: HandoffPolicy, principal: AgentPrincipal = Depends(current_agent),
                     services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """Replace the handoff policy (admins only)."""
    require_role(principal, "admin")
    await run_in_threadpool(services.handoff.policies.put, principal.agent.tenant_id, body)
    return body.model_dump()


@router.get("/webhooks")
async def list_webhooks(principal: AgentPrincipal = Depends(current_agent),
                        services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """Webhook endpoints and recent deliveries (admins only)."""
    require_role(principal, "admin")
    tenant = principal.agent.tenant_id
    return {"endpoints": [e.to_public() for e in await run_in_threadpool(services.webhooks.list, tenant)],
            "deliveries": await run_in_threadpool(services.webhooks.deliveries, tenant)}


@router.post("/webhooks", status_code=201)
async def add_webhook(body: WebhookBody, principal: AgentPrincipal = Depends(current_agent),
                      services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """Register an endpoint; the response holds its signing secret (shown once)."""
    require_role(principal, "admin")
    try:
        endpoint = await run_in_threadpool(services.webhooks.add, principal.agent.tenant_id, body.url)
    except ValueError as exc:
        raise ApiError(422, "invalid_url", str(exc)) from exc
    return endpoint.to_public()


@router.delete("/webhooks/{endpoint_id}")
async def remove_webhook(endpoint_id: str, principal: AgentPrincipal = Depends(current_agent),
                         services: GatewayServices = Depends(get_services)) -> dict[str, bool]:
    """Delete an endpoint."""
    require_role(principal, "admin")
    if not await run_in_threadpool(services.webhooks.remove, principal.agent.tenant_id, endpoint_id):
        raise ApiError(404, "unknown_webhook", "no such webhook endpoint")
    return {"deleted": True}
