"""``/healthz``: the gateway is healthy only when its database, Rasa and the action server are."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from gateway.api.deps import get_services
from gateway.services import GatewayServices

router = APIRouter(tags=["health"])


def _database_ok(services: GatewayServices) -> bool:
    try:
        with services.db_engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - any failure means "not healthy"
        return False


async def _actions_ok(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=3.0) as client:
            response = await client.get(f"{url}/health")
        return response.status_code == 200
    except httpx.HTTPError:
        return False


@router.get("/healthz")
async def healthz(services: GatewayServices = Depends(get_services)) -> JSONResponse:
    """Check every dependency; 200 when all are up, 503 naming the ones that are not."""
    checks: dict[str, Any] = {
        "database": await run_in_threadpool(_database_ok, services),
        "rasa": await services.dialogue.healthy(),
        "actions": await _actions_ok(services.settings.actions_url),
    }
    healthy = all(checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "degraded", "checks": checks}, status_code=200 if healthy else 503
    )
