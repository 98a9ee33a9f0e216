"""Gateway command line: ``python -m gateway {migrate,seed-demo,serve}``."""

from __future__ import annotations

import argparse

import uvicorn

from gateway.db.session import create_db_engine, create_session_factory
from gateway.demo_seed import demo_agent_password, seed_demo
from gateway.migrate import upgrade_database
from gateway.settings import get_settings


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and run one gateway command."""
    parser = argparse.ArgumentParser(prog="python -m gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply database migrations")
    sub.add_parser("seed-demo", help="create the demo tenant, widget key and orders")
    sub.add_parser("serve", help="run the gateway HTTP / WebSocket server")
    args = parser.parse_args(argv)
    settings = get_settings()

    if args.command == "migrate":
        upgrade_database(settings.database_url)
    elif args.command == "seed-demo":
        engine = create_db_engine(settings.database_url)
        seed_demo(create_session_factory(engine), settings.demo_tenant, settings.demo_widget_key,
                  demo_agent_password(settings))
        engine.dispose()
    elif args.command == "serve":
        uvicorn.run(
            "gateway.app:create_app",
            factory=True,
            host=settings.host,
            port=settings.gateway_port,
            log_level="info",
            ws_max_size=settings.max_body_bytes * 2,
        )


if __name__ == "__main__":
    main()
