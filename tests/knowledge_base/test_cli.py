"""``python -m knowledge_base``: a typo in the tenant fails fast; the plan's document limit holds."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from gateway.billing.plans import Plan, Unit
from gateway.billing.usage_service import UsageService
from gateway.settings import PROJECT_ROOT, Settings
from gateway.stores.tenant_store import TenantStore


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SWITCHBOARD_DATABASE_URL": settings.database_url, "SWITCHBOARD_KB_DIR": str(settings.kb_dir),
           "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "knowledge_base", *args], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_unknown_tenants_and_documents_over_the_plan_are_refused(settings: Settings, sessions: sessionmaker[Session],
                                                                 tmp_path: Path) -> None:
    unknown = cli(settings, "list", "--tenant", "acmee")
    assert unknown.returncode == 2 and "python -m gateway tenants create acmee" in unknown.stderr
    TenantStore(sessions).ensure_tenant("acme", "Acme")
    usage = UsageService(sessions)
    usage.plans.put(Plan(id="one", name="One", monthly_fee=Decimal("1"), limits={Unit.KB_DOCUMENTS: 1}))
    usage.change_plan("acme", "one")
    for name in ("a.md", "b.md"):
        (tmp_path / name).write_text(f"# {name}\n\nSome text about {name}.\n")
    over = cli(settings, "ingest", "--tenant", "acme", str(tmp_path / "a.md"), str(tmp_path / "b.md"))
    assert over.returncode == 2 and "includes 1 knowledge-base documents" in over.stderr
    assert cli(settings, "ingest", "--tenant", "acme", str(tmp_path / "a.md")).returncode == 0
    assert cli(settings, "ingest", "--tenant", "acme", str(tmp_path / "a.md")).returncode == 0  # a replacement fits
