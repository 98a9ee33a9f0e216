"""A tenant's assistant: created from a template, stored in revisions, exported and imported as a Rasa project."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy.orm import Session, sessionmaker

from gateway.assistants.assistant_service import AssistantService
from gateway.assistants.assistant_settings import AssistantSettings
from gateway.assistants.assistant_store import AssistantError
from gateway.assistants.project_builder import ProjectError
from gateway.settings import PROJECT_ROOT, Settings
from gateway.stores.tenant_store import TenantStore


@pytest.fixture
def service(sessions: sessionmaker[Session]) -> AssistantService:
    TenantStore(sessions).ensure_tenant("acme", "Acme Outdoor")
    TenantStore(sessions).ensure_tenant("globex", "Globex")
    return AssistantService(sessions, validate=lambda project: None)


def test_a_tenant_gets_its_own_copy_of_a_template_once(service: AssistantService) -> None:
    view = service.create("acme", "blank", "ops")
    assert (view.revision, view.template, view.settings.business_name) == (1, "blank", "Acme Outdoor")
    assert "order_status" not in view.language_data and "intent: greet" in view.language_data
    with pytest.raises(AssistantError) as exists:
        service.create("acme", "retail", "ops")
    assert exists.value.code == "assistant_exists"
    with pytest.raises(AssistantError) as unknown:
        service.create("globex", "casino", "ops")
    assert unknown.value.code == "unknown_template" and "blank, retail" in unknown.value.detail
    with pytest.raises(AssistantError) as nobody:
        service.create("initech", "blank", "ops")
    assert nobody.value.code == "unknown_tenant"
    assert service.store.current("globex") is None  # nothing stored half


def test_settings_make_revisions_and_an_unchanged_save_makes_none(service: AssistantService) -> None:
    first = service.create("acme", "retail", "ops")
    second = service.update_settings("acme", AssistantSettings(business_name="Acme", assistant_name="Ada"), "ops")
    again = service.update_settings("acme", AssistantSettings(business_name="Acme", assistant_name="Ada"), "ops")
    assert (first.revision, second.revision, again.revision) == (1, 2, 2)
    assert [r.revision for r in service.store.revisions("acme")] == [2, 1]
    with pytest.raises(AssistantError, match="unknown skills: teleport"):
        service.update_settings("acme", AssistantSettings(business_name="Acme", skills=["teleport"]), "ops")


def test_export_then_import_round_trips_language_data_settings_and_own_texts(service: AssistantService,
                                                                            tmp_path: Path) -> None:
    service.create("acme", "retail", "ops", assistant_name="Ada")
    project = service.export("acme", tmp_path / "acme")
    assert (tmp_path / "acme" / "switchboard.yml").exists() and project.tests is not None

    # A Rasa developer adds an intent, rewrites the goodbye and keeps a shipping text of their own.
    nlu = tmp_path / "acme" / "data" / "nlu.yml"
    nlu.write_text(nlu.read_text() + "- intent: opening_hours\n  examples: |\n    - when are you open\n    - opening times today\n")
    domain = yaml.safe_load((tmp_path / "acme" / "domain.yml").read_text())
    domain["responses"]["utter_goodbye"][0]["text"] = "Bye from Acme!"
    domain["responses"]["utter_answer_shipping_info"] = [{"text": "Acme ships in 2 days."}]
    (tmp_path / "acme" / "domain.yml").write_text(yaml.safe_dump(domain, sort_keys=False))

    report = service.import_folder("acme", tmp_path / "acme", "dev")
    assert report.assistant.revision == 2 and report.assistant.source == "import"
    assert report.own_texts == ["utter_answer_shipping_info", "utter_goodbye"]
    assert "opening_hours" in report.intents
    assert report.assistant.settings.assistant_name == "Ada"
    assert report.assistant.settings.responses["utter_goodbye"] == "Bye from Acme!"
    assert any("rules and stories are the platform's" in line for line in report.ignored)

    # Exporting again and importing unchanged stores nothing new.
    service.export("acme", tmp_path / "again")
    assert service.import_folder("acme", tmp_path / "again", "dev").assistant.revision == 2


@pytest.mark.parametrize("breakage, message", [
    (lambda d: (d / "domain.yml").write_text("responses:\n  utter_greet:\n  - text: [unclosed\n"), r"domain.yml:\d+: not valid YAML"),
    (lambda d: (d / "data" / "extra.yml").write_text("nlu:\n- intent: silent\n  examples: |\n\n"), "intent 'silent' has no examples"),
    (lambda d: (d / "data" / "nlu.yml").write_bytes(b"nlu:\n- intent: greet\n  examples: |\n    - caf\xe9\n"), "not UTF-8"),
    (lambda d: (d / "switchboard.yml").write_text("template: casino\n"), "unknown template"),
    (lambda d: (d / "switchboard.yml").write_text("settings:\n  business_name: ''\n"), "business_name"),
])
def test_a_broken_import_names_the_problem_and_stores_nothing(service: AssistantService, tmp_path: Path,
                                                               breakage, message: str) -> None:
    service.create("acme", "retail", "ops")
    service.export("acme", tmp_path / "acme")
    breakage(tmp_path / "acme")
    with pytest.raises((ProjectError, AssistantError), match=message):
        service.import_folder("acme", tmp_path / "acme", "dev")
    assert [r.revision for r in service.store.revisions("acme")] == [1]


@pytest.mark.slow
def test_the_cli_imports_through_rasas_own_validation(settings: Settings, sessions: sessionmaker[Session],
                                                      tmp_path: Path) -> None:
    TenantStore(sessions).ensure_tenant("acme", "Acme Outdoor")
    env = {**__import__("os").environ, "SWITCHBOARD_DATABASE_URL": settings.database_url}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "gateway", "assistant", *args], cwd=PROJECT_ROOT, env=env,
                              capture_output=True, text=True, timeout=300)

    assert cli("create", "acme", "--template", "nope").returncode == 2
    assert cli("create", "acme", "--template", "blank").returncode == 0
    assert cli("export", "acme", str(tmp_path / "acme")).returncode == 0
    # Valid YAML that Rasa's validator flags: a greeting example filed under a second intent as well.
    nlu = tmp_path / "acme" / "data" / "nlu.yml"
    greeting = yaml.safe_load(nlu.read_text())["nlu"][0]["examples"].splitlines()[0][2:]
    nlu.write_text(nlu.read_text() + f"- intent: opening_hours\n  examples: |\n    - when are you open\n    - {greeting}\n")
    refused = cli("import", "acme", str(tmp_path / "acme"))
    assert refused.returncode == 2 and "Rasa refused" in refused.stderr, refused.stdout + refused.stderr
    assert "multiple different intents" in refused.stderr
    accepted = cli("export", "acme", str(tmp_path / "clean"))
    assert accepted.returncode == 0
    imported = cli("import", "acme", str(tmp_path / "clean"))
    assert imported.returncode == 0, imported.stderr
    shown = yaml.safe_load(cli("show", "acme").stdout)
    assert shown["template"] == "blank" and shown["revision"] == 1  # the clean export changed nothing
