"""``python -m gateway tenants|plans|usage|close-period``: tenant and billing administration from a shell."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from gateway.billing.invoices import InvoiceError, PeriodCloser
from gateway.billing.periods import bounds
from gateway.billing.plans import UnknownPlanError
from gateway.billing.usage_service import UsageService
from gateway.db.session import create_db_engine, create_session_factory
from gateway.settings import Settings
from gateway.stores.tenant_store import TenantStore


def add_commands(sub: Any) -> None:
    """Register the billing commands on the gateway CLI's sub-parsers."""
    tenants = sub.add_parser("tenants", help="create tenants, issue widget keys, change plans")
    actions = tenants.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="onboard a business: tenant, plan, widget key, first admin, "
                                                   "first assistant (trained and live when the command ends)")
    create.add_argument("tenant")
    create.add_argument("--name", required=True)
    create.add_argument("--plan", default="free")
    create.add_argument("--template", default="blank", help="retail or blank (bot/templates/)")
    create.add_argument("--admin-email", help="the first admin's login (default admin@<tenant>.example)")
    create.add_argument("--no-train", action="store_true", help="create only; train later with `retrain`")
    key = actions.add_parser("issue-key", help="issue another widget key")
    key.add_argument("tenant")
    plan = actions.add_parser("set-plan", help="move a tenant to another plan from now (prorated)")
    plan.add_argument("tenant")
    plan.add_argument("plan")
    sub.add_parser("plans", help="list plans with prices and limits")
    usage = sub.add_parser("usage", help="a tenant's usage against its plan")
    usage.add_argument("tenant")
    usage.add_argument("--period", help="YYYY-MM (default: the current month)")
    usage.add_argument("--json", action="store_true")
    close = sub.add_parser("close-period", help="meter the period's end and write invoices (all tenants by default)")
    close.add_argument("period", help="YYYY-MM")
    close.add_argument("--tenant")


COMMANDS = {"tenants", "plans", "usage", "close-period"}


def _onboard(args: argparse.Namespace, settings: Settings, sessions: Any) -> int:
    """``tenants create``: everything a business needs, then its first assistant, with progress."""
    import time

    from gateway.onboarding import OnboardingError, TenantOnboarding

    started = time.monotonic()
    onboarding = TenantOnboarding(settings, sessions)
    try:
        created = onboarding.create(args.tenant, args.name, args.plan, args.template, args.admin_email, "cli")
    except OnboardingError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 2
    print(f"created {created.tenant_id} ({created.name}) on {created.plan} with the {created.template} assistant\n"
          f"  widget key:     {created.widget_key}\n"
          f"  first admin:    {created.admin_email}\n"
          f"  password:       {created.admin_password}   (shown once; log in at /console, then /admin)", flush=True)
    if args.no_train:
        print(f"train its assistant with `python -m gateway retrain {created.tenant_id}`")
        return 0
    version = onboarding.train_first(created.tenant_id, "cli", progress=lambda line: print(f"  {line}", flush=True))
    if version.status != "production":
        print(f"error: the first assistant did not go live ({version.status}: {version.error or version.gate})",
              file=sys.stderr)
        return 1
    print(f"{created.tenant_id}'s assistant v{version.version} is live ({time.monotonic() - started:.0f} s)")
    return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one billing command; returns the exit status."""
    engine = create_db_engine(settings.database_url)
    sessions = create_session_factory(engine)
    usage = UsageService(sessions)
    usage.plans.seed()
    tenants = TenantStore(sessions)
    console = Console()
    try:
        if args.command == "tenants":
            if args.action == "create":
                return _onboard(args, settings, sessions)
            elif not tenants.exists(args.tenant):
                print(f"error: no tenant {args.tenant!r}", file=sys.stderr)
                return 1
            elif args.action == "issue-key":
                print(tenants.issue_widget_key(args.tenant))
            else:
                usage.change_plan(args.tenant, args.plan, actor="cli")
                print(f"{args.tenant} is on {args.plan} from now")
        elif args.command == "plans":
            table = Table("plan", "monthly fee", "limits", "overage per unit", "channels")
            for plan in usage.plans.list():
                table.add_row(plan.name, f"{plan.monthly_fee} {plan.currency}",
                              ", ".join(f"{u.value} {n}" for u, n in plan.limits.items()),
                              ", ".join(f"{u.value} {p}" for u, p in plan.overage.items()) or "none (hard stop)",
                              ", ".join(plan.channels))
            console.print(table)
        elif args.command == "usage":
            if args.period:
                bounds(args.period)
            summary = usage.summary(args.tenant, args.period)
            if args.json:
                print(json.dumps(summary, indent=2))
                return 0
            table = Table("unit", "used", "included", "%", title=f"{args.tenant} · {summary['period']}")
            for unit in summary["units"]:
                table.add_row(unit["unit"], str(unit["used"]), "unlimited" if unit["limit"] is None else str(unit["limit"]),
                              "" if unit["percent"] is None else f"{unit['percent']}")
            console.print(table)
        else:
            bounds(args.period)
            closer = PeriodCloser(sessions, usage, settings.invoices_dir)
            targets = [args.tenant] if args.tenant else usage.subscriptions.tenants_in(args.period)
            for tenant in targets:
                try:
                    invoice = closer.close(tenant, args.period)
                except InvoiceError as exc:
                    if exc.code != "already_closed":
                        print(f"error: {exc.detail}", file=sys.stderr)
                        return 2
                    print(f"{tenant} {args.period}: closed before ({exc.existing['total'] if exc.existing else '?'})")
                    continue
                print(f"{tenant} {args.period}: {invoice['total']} {invoice['currency']} "
                      f"→ {settings.invoices_dir / tenant / (args.period + '.json')}")
    except (UnknownPlanError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0
