"""One error shape for every API failure: ``{"error": code, "detail": text}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.types import ASGIApp, Message, Receive, Scope, Send


logger = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answered to the client with a status, a stable code and a readable detail."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers
        self.extra = extra


def error_body(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    """The JSON body of an error."""
    return {"error": code, "detail": detail, **extra}


def install_error_handlers(app: FastAPI) -> None:
    """Map API errors and request-validation failures onto the common error shape."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.detail, **exc.extra), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Unknown routes, wrong methods and the like: the same shape as every other error.
        codes = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}
        detail = exc.detail if isinstance(exc.detail, str) else "the request cannot be served"
        code = codes.get(exc.status_code, f"http_{exc.status_code}")
        if exc.status_code == 400 and "parsing the body" in detail:  # FastAPI's word for bytes that are not JSON
            code, detail = "malformed_json", "the request body is not valid UTF-8 JSON"
        return JSONResponse(error_body(code, detail),
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(RecursionError)
    async def _too_deep(_request: Request, _exc: RecursionError) -> JSONResponse:
        return JSONResponse(error_body("malformed_json", "the request body is nested too deeply"), status_code=400)

    @app.exception_handler(DBAPIError)
    async def _database_error(_request: Request, exc: DBAPIError) -> JSONResponse:
        # A lost or restarting database: a clear, retryable answer instead of a 500 (nothing half-written:
        # each request's transaction was rolled back). Other database errors are bugs and stay 500s.
        if isinstance(exc, OperationalError) or exc.connection_invalidated:
            logger.warning("database unavailable: %s", exc.__class__.__name__)
            return JSONResponse(error_body("database_unavailable", "the database is unavailable; try again shortly"),
                                status_code=503, headers={"Retry-After": "5"})
        raise exc

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(error.get("type") in ("json_invalid", "unicode_decode_error") for error in errors):
            return JSONResponse(
                error_body("malformed_json", "the request body is not valid JSON"), status_code=400
            )
        fields = [
            {"loc": [str(part) for part in error.get("loc", ())], "msg": error.get("msg", "")}
            for error in errors
        ]
        return JSONResponse(
            error_body("invalid_request", "the request does not match the expected shape", fields=fields),
            status_code=422,
        )


class BodySizeLimitMiddleware:
    """Rejects HTTP bodies above a byte limit before anything parses them."""

    def __init__(self, app: ASGIApp, max_bytes: int, larger: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Path prefix -> limit, for the few routes that take files (knowledge-base uploads).
        self.larger = larger or {}

    def _limit(self, path: str) -> int:
        for prefix, limit in self.larger.items():
            if path.startswith(prefix):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope.get("path", ""))
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(send, limit)
            return
        # Read the whole body first (it is small by contract), so an oversized chunked body is
        # refused before the app sees any of it.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                await self._reject(send, limit)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, send: Send, limit: int) -> None:
        response = JSONResponse(
            error_body("body_too_large", f"request body exceeds {limit} bytes"), status_code=413
        )
        await response({"type": "http"}, _empty_receive, send)


async def _empty_receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}
