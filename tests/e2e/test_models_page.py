"""The models page in Chromium: versions with their gate, the metrics chart, and a rollback Rasa refuses."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.e2e.conftest import ThreadedGateway
from tests.e2e.conftest import log_in_on_admin_page, make_admin

TIMEOUT_MS = 15_000


def metrics(accuracy: float) -> dict[str, float]:
    return {"intent_accuracy": accuracy, "intent_macro_f1": accuracy - 0.01, "oos_recall": 0.9,
            "sentiment_accuracy": 0.95, "conversation_tests": 1.0}


def test_versions_gate_and_chart_and_a_rollback_while_rasa_is_down(browser: Browser, tmp_path: Path) -> None:
    from gateway.db.session import create_db_engine, create_session_factory
    from gateway.learning.evaluation_gate import EvaluationGate
    from gateway.learning.model_registry import ModelRegistry
    from gateway.migrate import upgrade_database
    from gateway.stores.tenant_store import TenantStore
    from tests.conftest import make_settings
    from tests.gateway.conftest import ScriptedDialogueEngine
    from tests.gateway.learning.test_model_registry import archive

    token = "admin-" + "v" * 40
    settings = make_settings(tmp_path, admin_token=token)  # type: ignore[arg-type]
    upgrade_database(settings.database_url)
    db = create_db_engine(settings.database_url)
    sessions = create_session_factory(db)
    TenantStore(sessions).ensure_tenant("northwind", "Northwind")
    registry = ModelRegistry(sessions, settings.model_registry_dir)
    registry.register_base("northwind", archive(tmp_path, b"first"), "make train")
    registry.update("northwind", 1, metrics=metrics(0.93))
    registry.register_base("northwind", archive(tmp_path, b"second"), "make train")
    registry.update("northwind", 2, metrics=metrics(0.96))
    registry.begin_retraining("northwind", "reviewer", None)
    worse = metrics(0.80)
    registry.update("northwind", 3, status="refused", metrics=worse,
                    gate=EvaluationGate(0.02).decide(worse, metrics(0.96), 2).to_json())
    db.dispose()

    gateway = ThreadedGateway(settings, ScriptedDialogueEngine())
    gateway.start()
    try:
        page = browser.new_context().new_page()
        log_in_on_admin_page(page, f"{gateway.url}/admin/models", "northwind",
                             make_admin(settings.database_url, "northwind"))
        rows = page.locator("#versions tr")
        expect(rows).to_have_count(3, timeout=TIMEOUT_MS)
        expect(rows.nth(0)).to_contain_text("v3")
        expect(rows.nth(0)).to_contain_text("refused")
        expect(rows.nth(0)).to_contain_text("80.0 %")
        expect(rows.nth(1)).to_contain_text("production")
        expect(page.locator("#chart polyline.metric-line")).to_have_count(5)
        expect(page.locator("#chart circle")).to_have_count(15)
        expect(page.locator("#deployments li")).to_have_count(2)
        expect(rows.nth(0).get_by_role("button")).to_have_count(0)  # a refused model offers no way to go live

        # Rasa is not running here: nothing refuses the model, so the rollback goes through the registry's
        # production file, which every Rasa replica loads the tenant's agent from on its next turn.
        rows.nth(2).get_by_role("button", name="Roll back to this").click()
        expect(rows.nth(2)).to_contain_text("production", timeout=TIMEOUT_MS)
        expect(rows.nth(1)).not_to_contain_text("production")
        assert '"version": 1' in (settings.model_registry_dir / "northwind" / "production.json").read_text()
        page.context.close()
    finally:
        gateway.stop()
