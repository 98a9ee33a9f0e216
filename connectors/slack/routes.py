"""HTTP routes of the Slack channel: Bolt's request URL, the OAuth install flow, and the admin API.

    POST /slack/events                        Events API, interactivity and slash commands (one URL)
    GET  /slack/install?ticket=…              signed install link → Slack's authorize page
    GET  /slack/oauth_redirect?code&state     Slack's callback → workspace stored for the tenant
    POST /api/v1/admin/tenants/{t}/slack/install-link
    GET  /api/v1/admin/tenants/{t}/slack/workspaces
    POST /api/v1/admin/tenants/{t}/slack/workspaces             register a bot token directly (one workspace)
    PUT  /api/v1/admin/tenants/{t}/slack/workspaces/{team_id}   {"escalation_channel": "C…" | null}
"""

from __future__ import annotations

import html
import logging
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_sdk.errors import SlackApiError
from starlette.concurrency import run_in_threadpool

from connectors.slack.channel import SlackChannel
from connectors.slack.oauth import STATE_COOKIE, STATE_TTL, InstallLinkSigner, OAuthStateStore
from connectors.slack.workspace_store import WorkspaceConflictError
from gateway.api.tenant_admin_auth import require_tenant_admin
from gateway.api.deps import get_services, require_tenant
from gateway.api.errors import ApiError
from gateway.services import GatewayServices

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)
admin_router = APIRouter(prefix="/api/v1/admin/tenants", tags=["admin: slack"], dependencies=[Depends(require_tenant_admin)])


def slack_channel(request: Request) -> SlackChannel:
    """Dependency: the Slack channel (404 while Slack is not configured)."""
    channel: SlackChannel | None = getattr(request.app.state, "slack", None)
    if channel is None:
        raise ApiError(404, "slack_disabled", "Slack is not configured (set SWITCHBOARD_SLACK_SIGNING_SECRET)")
    return channel


@router.post("/slack/events")
async def slack_events(request: Request, channel: SlackChannel = Depends(slack_channel)) -> Response:
    """Bolt's request URL: verifies the signature, acknowledges, and runs listeners in the background."""
    return await AsyncSlackRequestHandler(channel.app).handle(request)


@router.get("/slack/install")
async def slack_install(ticket: str, request: Request, channel: SlackChannel = Depends(slack_channel)) -> Response:
    """Start the install of the Slack app for the tenant of a signed install link."""
    settings = channel.services.settings
    tenant_id = InstallLinkSigner(settings.secret_key.get_secret_value()).verify(ticket)
    if tenant_id is None or not settings.slack_client_id:
        raise ApiError(400, "bad_install_link", "this install link is invalid or expired; ask for a new one")
    state = await run_in_threadpool(OAuthStateStore(channel.services.sessions).issue, tenant_id)
    query = urlencode({"client_id": settings.slack_client_id, "scope": settings.slack_scopes, "state": state,
                       "redirect_uri": str(request.url_for("slack_oauth_redirect"))})
    response = RedirectResponse(f"{settings.slack_authorize_url}?{query}", status_code=302)
    response.set_cookie(STATE_COOKIE, state, max_age=int(STATE_TTL.total_seconds()), httponly=True, samesite="lax",
                        secure=settings.secure_cookies, path="/slack")
    return response


def _page(title: str, text: str, status: int) -> HTMLResponse:
    return HTMLResponse(f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
                        f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>", status_code=status)


@router.get("/slack/oauth_redirect")
async def slack_oauth_redirect(request: Request, channel: SlackChannel = Depends(slack_channel)) -> HTMLResponse:
    """Slack's callback: check the state (URL = cookie, unused, fresh), exchange the code, store the workspace."""
    settings = channel.services.settings
    state = request.query_params.get("state", "")
    code = request.query_params.get("code", "")
    if request.query_params.get("error"):
        return _page("Slack was not connected", f"Slack said: {request.query_params['error']}", 400)
    if not state or request.cookies.get(STATE_COOKIE) != state:
        return _page("Slack was not connected", "This link was not opened in the browser that started the install.", 400)
    tenant_id = await run_in_threadpool(OAuthStateStore(channel.services.sessions).consume, state)
    if tenant_id is None or not code:
        return _page("Slack was not connected", "The install link expired or was already used; start again.", 400)
    assert settings.slack_client_id and settings.slack_client_secret
    try:
        result = await channel.app.client.oauth_v2_access(
            client_id=settings.slack_client_id, client_secret=settings.slack_client_secret.get_secret_value(),
            code=code, redirect_uri=str(request.url_for("slack_oauth_redirect")))
    except SlackApiError as exc:
        return _page("Slack was not connected", f"Slack refused the code ({exc.response.get('error')}).", 400)
    team = result.get("team") or {}
    try:
        workspace = await run_in_threadpool(lambda: channel.workspaces.save(
            tenant_id, team["id"], result["access_token"], team_name=team.get("name"),
            bot_user_id=result.get("bot_user_id"), app_id=result.get("app_id"),
            enterprise_id=(result.get("enterprise") or {}).get("id"), scopes=result.get("scope"),
            installer_user_id=(result.get("authed_user") or {}).get("id")))
    except WorkspaceConflictError:
        return _page("Slack was not connected", "This workspace is already connected to another organisation.", 409)
    response = _page("Slack connected", f"Switchboard is installed in {workspace.team_name or workspace.team_id}.", 200)
    response.delete_cookie(STATE_COOKIE, path="/slack")
    return response


# ------------------------------------------------------------------- admin
class WorkspaceRegistration(BaseModel):
    """A workspace connected by pasting its bot token (single-workspace setups, development)."""

    team_id: str = Field(min_length=1, max_length=32)
    bot_token: str = Field(min_length=10, max_length=300)
    bot_user_id: str | None = Field(default=None, max_length=32)
    team_name: str | None = Field(default=None, max_length=200)
    escalation_channel: str | None = Field(default=None, max_length=32)


class EscalationChannel(BaseModel):
    """Where a workspace's escalations go."""

    escalation_channel: str | None = Field(default=None, max_length=32)


@admin_router.post("/{tenant}/slack/install-link")
async def install_link(tenant: str, request: Request, services: GatewayServices = Depends(get_services),
                       channel: SlackChannel = Depends(slack_channel)) -> dict[str, Any]:
    """A signed link (valid one hour) that installs the Slack app into a workspace for this tenant."""
    await require_tenant(services, tenant)
    ticket = InstallLinkSigner(services.settings.secret_key.get_secret_value()).sign(tenant)
    return {"url": f"{request.url_for('slack_install')}?{urlencode({'ticket': ticket})}", "expires_in_s": 3600}


@admin_router.get("/{tenant}/slack/workspaces")
async def list_workspaces(tenant: str, services: GatewayServices = Depends(get_services),
                          channel: SlackChannel = Depends(slack_channel)) -> dict[str, Any]:
    """The tenant's workspaces (never their tokens)."""
    await require_tenant(services, tenant)
    return {"workspaces": [w.to_public() for w in await run_in_threadpool(channel.workspaces.for_tenant, tenant)]}


@admin_router.post("/{tenant}/slack/workspaces", status_code=201)
async def register_workspace(tenant: str, body: WorkspaceRegistration,
                             services: GatewayServices = Depends(get_services),
                             channel: SlackChannel = Depends(slack_channel)) -> dict[str, Any]:
    """Connect a workspace with a bot token directly."""
    await require_tenant(services, tenant)
    try:
        workspace = await run_in_threadpool(lambda: channel.workspaces.save(
            tenant, body.team_id, body.bot_token, team_name=body.team_name, bot_user_id=body.bot_user_id,
            escalation_channel=body.escalation_channel))
    except WorkspaceConflictError as exc:
        raise ApiError(409, "workspace_taken", str(exc)) from exc
    return workspace.to_public()


@admin_router.put("/{tenant}/slack/workspaces/{team_id}")
async def set_escalation_channel(tenant: str, team_id: str, body: EscalationChannel,
                                 services: GatewayServices = Depends(get_services),
                                 channel: SlackChannel = Depends(slack_channel)) -> dict[str, Any]:
    """Choose the channel where this tenant's escalations are posted in the workspace."""
    workspace = await run_in_threadpool(channel.workspaces.set_escalation_channel, tenant, team_id,
                                        body.escalation_channel)
    if workspace is None:
        raise ApiError(404, "unknown_workspace", "no such workspace for this tenant")
    return workspace.to_public()
