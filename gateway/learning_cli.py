"""``python -m gateway retrain|models|promote|rollback``: the learning loop from a shell.

    python -m gateway retrain northwind               # reviewed data → train → gate → hot swap
    python -m gateway retrain northwind --no-promote  # stop at the gate (promote later)
    python -m gateway models northwind                # versions with metrics, gate and who promoted them
    python -m gateway promote northwind 7             # put a candidate that passed the gate live
    python -m gateway rollback northwind [--to 3]     # back to the previous (or any earlier) version
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from sqlalchemy.exc import OperationalError
from rich.table import Table

from gateway.db.session import create_db_engine, create_session_factory
from gateway.learning.model_registry import VersionView
from gateway.learning.retraining import RetrainingError, RetrainingPipeline
from gateway.settings import Settings
from gateway.stores.tenant_store import TenantStore

COMMANDS = {"retrain", "models", "promote", "rollback"}


def add_commands(sub: Any) -> None:
    """Register the learning-loop commands on the gateway CLI's sub-parsers."""
    retrain = sub.add_parser("retrain", help="retrain from reviewed examples, evaluate, gate and hot-swap")
    retrain.add_argument("tenant")
    retrain.add_argument("--no-promote", action="store_true", help="stop after the gate")
    retrain.add_argument("--refine", action="store_true",
                         help="then fine-tune on the same data and gate that model too (minutes)")
    retrain.add_argument("--actor", default="cli")
    models = sub.add_parser("models", help="list a tenant's model versions")
    models.add_argument("tenant")
    models.add_argument("--json", action="store_true")
    promote = sub.add_parser("promote", help="put a candidate that passed the gate into production")
    promote.add_argument("tenant")
    promote.add_argument("version", type=int)
    promote.add_argument("--actor", default="cli")
    rollback = sub.add_parser("rollback", help="put an earlier version back into production")
    rollback.add_argument("tenant")
    rollback.add_argument("--to", type=int, help="version number (default: the previous production version)")
    rollback.add_argument("--actor", default="cli")


def _table(versions: list[VersionView]) -> Table:
    table = Table(title="model versions")
    for column in ("version", "status", "source", "intent acc.", "macro F1", "OOS recall", "sentiment",
                   "conv. tests", "gate", "promoted by", "created"):
        table.add_column(column)
    for v in versions:
        m = v.metrics or {}

        def fmt(key: str) -> str:
            return f"{m[key]:.4f}" if isinstance(m.get(key), (int, float)) else "-"

        gate = "-" if v.gate is None else ("passed" if v.gate.get("passed") else "refused")
        table.add_row(f"v{v.version}", v.status + (f" ({v.stage})" if v.stage else ""), v.source,
                      fmt("intent_accuracy"), fmt("intent_macro_f1"), fmt("oos_recall"), fmt("sentiment_accuracy"),
                      fmt("conversation_tests"), gate, v.promoted_by or "-", v.created_at[:19])
    return table


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one learning-loop command; returns the exit status."""
    console = Console(stderr=True)
    engine = create_db_engine(settings.database_url)
    try:
        return _run(args, settings, engine, console)
    except OperationalError as exc:
        console.print(f"error: the database {engine.url.render_as_string(hide_password=True)} is not ready "
                      f"({exc.orig.__class__.__name__}): run `python -m gateway migrate` or `make run` first, or set "
                      "SWITCHBOARD_DATABASE_URL to the deployment's database")
        return 1
    finally:
        engine.dispose()


def _run(args: argparse.Namespace, settings: Settings, engine: Any, console: Console) -> int:
    sessions = create_session_factory(engine)
    if not TenantStore(sessions).exists(args.tenant):
        console.print(f"error: no tenant {args.tenant!r}")
        return 1
    pipeline = RetrainingPipeline(settings, sessions, progress=lambda line: console.print(line))
    if args.command == "models":
        versions = pipeline.registry.list(args.tenant)
        if args.json:
            print(json.dumps([v.to_public() for v in versions], indent=2))
        else:
            Console().print(_table(versions))
        return 0
    try:
        if args.command == "retrain":
            with console.status("retraining…"):
                row = pipeline.retrain(args.tenant, args.actor, promote=not args.no_promote, refine=args.refine)
        elif args.command == "promote":
            row = pipeline.promote(args.tenant, args.version, args.actor)
        else:
            row = pipeline.rollback(args.tenant, args.actor, args.to)
    except RetrainingError as exc:
        console.print(f"error: {exc.detail}")
        return 1
    Console().print(_table([row]))
    if row.status == "failed":
        console.print(f"error: {row.error}")
        return 1
    return 0 if row.status in ("production", "candidate") else 2
