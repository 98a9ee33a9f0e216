"""The action server: rasa-sdk's, answering only the Rasa servers that present the shared secret.

``python -m actions.server --port 5055`` (the stack runner and ``docker/actions.Dockerfile`` start it).
rasa-sdk's own server answers anyone who reaches its port: a forged tracker with another tenant's id
would read that tenant's orders. Rasa sends ``X-Switchboard-Token`` with every action call
(``action_endpoint.headers`` in ``bot/endpoints*.yml``); calls without it get 401. ``/health`` stays
open for the supervisor and health checks.
"""

from __future__ import annotations

import argparse
import hmac
import logging
import os
import warnings
from functools import partial
from pathlib import Path

from rasa_sdk.endpoint import create_app_for_serve
from rasa_sdk.executor import ActionExecutor
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sanic.worker.loader import AppLoader

TOKEN_ENV = "SWITCHBOARD_RASA_TOKEN"
ENDPOINTS = Path(__file__).with_name("endpoints.yml")
# Rasa 3.6 needs Python 3.10 and rasa-sdk 3.6 does not run on 3.11, so the action server runs rasa-sdk
# 3.21; the action protocol between them is unchanged (every conversation test crosses it). rasa-sdk
# warns on each start that the minor versions differ: known and checked, so not repeated in the log.
warnings.filterwarnings("ignore", message="Your versions of rasa and rasa_sdk might not be compatible")
TOKEN_HEADER = "X-Switchboard-Token"
logger = logging.getLogger(__name__)


def create_guarded_app(action_executor: ActionExecutor, token: str) -> Sanic:
    """rasa-sdk's app with a check of the shared secret in front of everything but ``/health``."""
    app = create_app_for_serve(action_executor, cors_origins=None, endpoints=str(ENDPOINTS))

    @app.on_request
    async def require_token(request: Request) -> HTTPResponse | None:
        if request.path == "/health":
            return None
        supplied = request.headers.get(TOKEN_HEADER, "")
        if not supplied.isascii() or not hmac.compare_digest(supplied.encode(), token.encode()):
            return response.json({"error": "unauthorised", "detail": f"send the shared secret in {TOKEN_HEADER}"},
                                 status=401)
        return None

    return app


def main(argv: list[str] | None = None) -> None:
    """Serve the actions package on ``--port`` behind the shared secret (``SWITCHBOARD_RASA_TOKEN``)."""
    parser = argparse.ArgumentParser(prog="python -m actions.server")
    parser.add_argument("--port", type=int, default=5055)
    parser.add_argument("--actions", default="actions")
    args = parser.parse_args(argv)
    token = os.environ.get(TOKEN_ENV, "")
    if not token:
        raise SystemExit(f"error: set {TOKEN_ENV} (the secret Rasa sends with every action call)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    executor = ActionExecutor()
    executor.register_package(args.actions)
    loader = AppLoader(factory=partial(create_guarded_app, executor, token))
    app = loader.load()
    host = os.environ.get("SANIC_HOST", "127.0.0.1")
    logger.info("action server on http://%s:%s (calls need %s)", host, args.port, TOKEN_HEADER)
    app.prepare(host=host, port=args.port, workers=1)
    Sanic.serve(primary=app, app_loader=loader)


if __name__ == "__main__":
    main()
