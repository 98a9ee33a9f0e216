"""Gateway command line: ``python -m gateway {migrate,seed-demo,add-agent,serve,tenants,plans,usage,close-period,
    retrain,models,promote,rollback,log-consumer,assistant}``."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

import uvicorn

from gateway import assistant_cli, billing_cli, learning_cli
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
    add = sub.add_parser("add-agent", help="create an agent account (the first admin of a tenant, for example)")
    add.add_argument("--tenant", required=True)
    add.add_argument("--email", required=True)
    add.add_argument("--name", required=True)
    add.add_argument("--role", default="agent", choices=["agent", "supervisor", "admin"])
    add.add_argument("--teams", default="general", help="comma-separated team names")
    add.add_argument("--capacity", type=int, default=3)
    serve = sub.add_parser("serve", help="run the gateway HTTP / WebSocket server")
    serve.add_argument("--port", type=int, help="port (default: SWITCHBOARD_GATEWAY_PORT); replicas get their own")
    sub.add_parser("log-consumer", help="write Rasa's event stream from RabbitMQ into the conversation log")
    billing_cli.add_commands(sub)
    learning_cli.add_commands(sub)
    assistant_cli.add_commands(sub)
    args = parser.parse_args(argv)
    settings = get_settings()

    if args.command in billing_cli.COMMANDS:
        sys.exit(billing_cli.run(args, settings))
    if args.command in learning_cli.COMMANDS:
        sys.exit(learning_cli.run(args, settings))
    if args.command in assistant_cli.COMMANDS:
        sys.exit(assistant_cli.run(args, settings))

    if args.command == "migrate":
        upgrade_database(settings.database_url)
    elif args.command == "seed-demo":
        engine = create_db_engine(settings.database_url)
        seed_demo(create_session_factory(engine), settings.demo_tenant, settings.demo_widget_key,
                  agent_password=demo_agent_password(settings))
        engine.dispose()
    elif args.command == "add-agent":
        sys.exit(_add_agent(args, settings.database_url))
    elif args.command == "log-consumer":
        sys.exit(_log_consumer(settings))
    elif args.command == "serve":
        import logging

        # The gateway's own events (handoffs opened, erasures, unfinished turns answered) at INFO, beside
        # uvicorn's lines, in the service log (var/logs/gateway.log under make run). They carry ids and
        # counts, never what customers wrote.
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        uvicorn.run(
            "gateway.app:create_app",
            factory=True,
            host=settings.host,
            port=args.port or settings.gateway_port,
            log_level="info",
            ws_max_size=settings.max_body_bytes * 2,
            timeout_keep_alive=settings.keep_alive_s,
        )


def _log_consumer(settings) -> int:  # type: ignore[no-untyped-def]
    """Run the broker consumer until SIGINT / SIGTERM."""
    import logging
    import signal

    from gateway.events.log_consumer import RabbitEventLogConsumer

    if not settings.broker_url:
        print("error: set SWITCHBOARD_BROKER_URL (e.g. amqp://guest:guest@127.0.0.1:5672/%2F)", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    engine = create_db_engine(settings.database_url)
    consumer = RabbitEventLogConsumer(create_session_factory(engine), settings.broker_url, settings.broker_queue)
    signal.signal(signal.SIGTERM, lambda *_: consumer.stop())
    signal.signal(signal.SIGINT, lambda *_: consumer.stop())
    consumer.run()
    print(f"stopped: {consumer.stats.to_public()}", file=sys.stderr)
    engine.dispose()
    return 0


def _add_agent(args: argparse.Namespace, database_url: str) -> int:
    """Create an agent; the password comes from SWITCHBOARD_NEW_AGENT_PASSWORD or a prompt (never argv)."""
    from gateway.stores.agent_store import AgentExistsError, AgentStore
    from gateway.stores.tenant_store import TenantStore

    password = os.environ.get("SWITCHBOARD_NEW_AGENT_PASSWORD") or getpass.getpass("password: ")
    engine = create_db_engine(database_url)
    try:
        sessions = create_session_factory(engine)
        if not TenantStore(sessions).exists(args.tenant):
            print(f"error: no tenant {args.tenant!r}", file=sys.stderr)
            return 1
        from gateway.billing.plans import Unit
        from gateway.billing.usage_service import UsageService

        teams = [t.strip() for t in args.teams.split(",") if t.strip()]
        limit = UsageService(sessions).gauge_limit(args.tenant, Unit.AGENT_SEATS)  # the plan's seats, as the API
        agent = AgentStore(sessions).create(args.tenant, args.email, args.name, password, args.role, teams, args.capacity,
                                            seat_limit=limit)
    except (AgentExistsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"created {agent.role} {agent.email} ({agent.id}) in {args.tenant}")
    return 0


if __name__ == "__main__":
    main()
