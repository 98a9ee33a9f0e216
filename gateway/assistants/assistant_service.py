"""A tenant's assistant as a whole: create it from a template, build its Rasa project, export and import it.

Export writes an ordinary Rasa project folder (``config.yml``, ``domain.yml``, ``data/``, ``tests/``)
plus ``switchboard.yml`` (template and settings). Import reads such a folder back: the NLU files become
the tenant's language data, ``switchboard.yml`` its settings, and every response text in ``domain.yml``
that differs from what the skills would say becomes a text of the tenant's own. Rules, stories and
actions are the platform's skills: edits to them are reported and not stored. Nothing is stored unless
the whole folder is valid YAML, every intent has examples, and ``rasa data validate`` accepts the
project it makes.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from gateway.assistants.assistant_settings import AssistantSettings
from gateway.assistants.assistant_store import AssistantError, AssistantStore, AssistantView
from gateway.assistants.project_builder import (
    AssistantProject,
    AssistantProjectBuilder,
    ProjectError,
    ReviewedExample,
    parse_language_data,
)
from gateway.assistants.templates import BOT_DIR, AssistantTemplate, UnknownTemplateError, load_assistant_file
from gateway.assistants.rasa_files import rasa_yaml
from gateway.stores.tenant_store import TenantStore

SETTINGS_FILE = "switchboard.yml"


@dataclass(frozen=True)
class ImportReport:
    """What an import stored and what it left alone."""

    assistant: AssistantView
    intents: list[str]
    own_texts: list[str]
    ignored: list[str] = field(default_factory=list)


def load_yaml_file(path: Path, root: Path) -> Any:
    """A YAML file's content.

    Raises:
        ProjectError: It is not valid YAML (the message names the file and line).
    """
    name = path.relative_to(root).as_posix()
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ProjectError(f"{name}: not UTF-8 text (byte {exc.start})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        raise ProjectError(f"{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from exc


class AssistantService:
    """Creates, builds, exports and imports tenants' assistants.

    Args:
        sessions: Gateway database.
        bot_dir: The skills' Rasa project.
        validate: Runs Rasa's validation on a built project and returns its complaint (None when valid);
            ``rasa data validate`` in ``.venv-rasa`` by default.
    """

    def __init__(self, sessions: sessionmaker[Session], bot_dir: Path = BOT_DIR, validate: Any = None) -> None:
        self.sessions = sessions
        self.store = AssistantStore(sessions)
        self.builder = AssistantProjectBuilder(bot_dir)
        self.validate = validate or rasa_validate

    # ------------------------------------------------------------- creating
    def create(self, tenant_id: str, template_name: str, actor: str, business_name: str | None = None,
               assistant_name: str | None = None) -> AssistantView:
        """Give a tenant its assistant from a template.

        Raises:
            AssistantError: Unknown template or tenant, or the tenant has an assistant already.
        """
        template = self.template(template_name)
        tenant = TenantStore(self.sessions).get(tenant_id)
        if tenant is None:
            raise AssistantError("unknown_tenant", f"unknown tenant {tenant_id!r}")
        settings = AssistantSettings(business_name=business_name or tenant.name, assistant_name=assistant_name)
        return self.store.create(tenant_id, template, settings, actor)

    def ensure_from_file(self, tenant_id: str, path: Path, actor: str) -> AssistantView:
        """The tenant's assistant, created from a file like ``bot/tenants/northwind.yml`` when it has none."""
        current = self.store.current(tenant_id)
        if current is not None:
            return current
        try:
            template, settings = load_assistant_file(path)
        except UnknownTemplateError as exc:
            raise AssistantError("unknown_template", str(exc)) from exc
        return self.store.create(tenant_id, template, AssistantSettings.model_validate(settings), actor)

    def update_settings(self, tenant_id: str, settings: AssistantSettings, actor: str) -> AssistantView:
        """Store new settings (a new revision); the next training run uses them.

        Raises:
            AssistantError: The tenant has no assistant, or a skill that does not exist.
        """
        current = self.require(tenant_id)
        unknown = sorted(set(settings.skills or ()) - set(self.builder.catalog.skills))
        if unknown:
            raise AssistantError("unknown_skill", f"unknown skills: {', '.join(unknown)}")
        return self.store.save(tenant_id, current.template, settings, current.language_data, "settings", actor)

    @staticmethod
    def template(name: str) -> AssistantTemplate:
        """A template by name (``AssistantError`` ``unknown_template`` when there is none)."""
        try:
            return AssistantTemplate.load(name)
        except UnknownTemplateError as exc:
            raise AssistantError("unknown_template", str(exc)) from exc

    def require(self, tenant_id: str) -> AssistantView:
        """The tenant's assistant, or ``AssistantError`` ``no_assistant``."""
        current = self.store.current(tenant_id)
        if current is None:
            raise AssistantError("no_assistant", f"{tenant_id} has no assistant yet; create one with "
                                 f"`python -m gateway assistant create {tenant_id} --template retail|blank`")
        return current

    # ------------------------------------------------------------- building
    def build(self, tenant_id: str, root: Path, reviewed: list[ReviewedExample] | None = None,
              classifier_settings: dict[str, Any] | None = None,
              assistant: AssistantView | None = None) -> AssistantProject:
        """Write the tenant's Rasa project (its current assistant unless one is given) to ``root``."""
        assistant = assistant or self.require(tenant_id)
        return self.builder.build(root, tenant_id, self.template(assistant.template), assistant.settings,
                                  assistant.language_data, reviewed, classifier_settings)

    # ------------------------------------------------------ export / import
    def export(self, tenant_id: str, folder: Path, reviewed: list[ReviewedExample] | None = None) -> AssistantProject:
        """Write the tenant's assistant to ``folder`` as a Rasa project plus ``switchboard.yml``."""
        assistant = self.require(tenant_id)
        project = self.build(tenant_id, folder, reviewed, assistant=assistant)
        shutil.rmtree(project.holdout.parent)  # the gate's held-out set is not the tenant's to train on
        (folder / SETTINGS_FILE).write_text(
            "# Switchboard: the assistant's template and settings layer (python -m gateway assistant import reads it).\n"
            + rasa_yaml({"tenant": tenant_id, "revision": assistant.revision, "template": assistant.template,
                         "settings": assistant.settings.model_dump(exclude_none=True)}), encoding="utf-8")
        return project

    def import_folder(self, tenant_id: str, folder: Path, actor: str) -> ImportReport:
        """Store a Rasa project folder as the tenant's assistant (a new revision), or nothing at all.

        Raises:
            ProjectError: Broken YAML (file and line named), an intent without examples, bad settings,
                or a project Rasa's validation refuses.
            AssistantError: Unknown tenant or template.
        """
        if not folder.is_dir():
            raise ProjectError(f"{folder}: not a folder")
        current = self.store.current(tenant_id)
        # Language data comes from data/ only (tests/ and any held-out set must never become training data).
        files = sorted(p for p in [*folder.glob("*.y*ml"), *(folder / "data").rglob("*.y*ml")]
                       if p.suffix in (".yml", ".yaml") and p.is_file())
        documents = {p: load_yaml_file(p, folder) for p in files}  # every file parses, or nothing is stored
        raw_settings = documents.get(folder / SETTINGS_FILE) or {}
        if not isinstance(raw_settings, dict):
            raise ProjectError(f"{SETTINGS_FILE}: expected a mapping")
        template_name = str(raw_settings.get("template") or (current.template if current else "retail"))
        template = self.template(template_name)
        try:
            settings = AssistantSettings.model_validate(
                raw_settings.get("settings") or (current.settings.model_dump() if current else
                                                 {"business_name": self._tenant_name(tenant_id)}))
        except ValidationError as exc:
            raise ProjectError(f"{SETTINGS_FILE}: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from exc

        blocks: list[dict[str, Any]] = []
        ignored: list[str] = []
        for path, document in documents.items():
            name = path.relative_to(folder).as_posix()
            if not isinstance(document, dict) or path.name == SETTINGS_FILE:
                continue
            if document.get("nlu") is not None:
                blocks += parse_language_data(rasa_yaml({"nlu": document["nlu"]}), name)
            if any(document.get(k) for k in ("rules", "stories")) and name.startswith("data/"):
                ignored.append(f"{name}: rules and stories are the platform's skills (not stored)")
        if not any("intent" in b for b in blocks):
            raise ProjectError("no intents with examples under data/ (an `nlu:` file is needed)")
        language_data = rasa_yaml({"version": "3.1", "nlu": _merge_blocks(blocks)})

        own_texts = self._own_texts(tenant_id, template, settings, language_data, documents.get(folder / "domain.yml"))
        settings = settings.model_copy(update={"responses": {**settings.responses, **own_texts}})
        with tempfile.TemporaryDirectory(prefix="switchboard-import-") as tmp:
            project = self.builder.build(Path(tmp) / "project", tenant_id, template, settings, language_data)
            complaint = self.validate(project)
            if complaint:
                raise ProjectError(f"Rasa refused the project: {complaint}")
        view = self.store.save(tenant_id, template.name, settings, language_data, "import", actor)
        return ImportReport(view, project.intents, sorted(own_texts), ignored)

    def _tenant_name(self, tenant_id: str) -> str:
        tenant = TenantStore(self.sessions).get(tenant_id)
        if tenant is None:
            raise AssistantError("unknown_tenant", f"unknown tenant {tenant_id!r}")
        return tenant.name

    def _own_texts(self, tenant_id: str, template: AssistantTemplate, settings: AssistantSettings,
                   language_data: str, domain: Any) -> dict[str, str]:
        """Response texts of an imported domain that differ from what the skills (with these settings) say."""
        if not isinstance(domain, dict) or not isinstance(domain.get("responses"), dict):
            return {}
        with tempfile.TemporaryDirectory(prefix="switchboard-import-") as tmp:
            project = self.builder.build(Path(tmp) / "p", tenant_id, template, settings, language_data)
            built = yaml.safe_load(project.domain.read_text(encoding="utf-8")).get("responses") or {}
        own: dict[str, str] = {}
        for name, variations in domain["responses"].items():
            text = next((v.get("text") for v in variations or [] if isinstance(v, dict) and v.get("text")), None)
            if not isinstance(text, str) or not str(name).startswith("utter_"):
                continue
            theirs = next((v.get("text") for v in built.get(name) or [] if isinstance(v, dict)), None)
            if text != theirs:
                own[str(name)] = text
        return own


def _merge_blocks(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One block per intent (several files may add examples to one intent)."""
    merged: dict[str, dict[str, Any]] = {}
    others: list[dict[str, Any]] = []
    for block in blocks:
        intent = block.get("intent")
        if intent is None:
            others.append(block)
        elif intent in merged:
            merged[intent]["examples"] = merged[intent]["examples"].rstrip("\n") + "\n" + block["examples"]
        else:
            merged[intent] = {"intent": intent, "examples": block["examples"]}
    return [*merged.values(), *others]


#: Rasa validator warnings caused by a tenant's own data (the skills' known warnings are not its fault).
TENANT_DATA_WARNINGS = ("labeled with multiple different intents", "is not listed in your domain",
                        "not defined in the domain", "conflicting action")


def rasa_validate(project: AssistantProject, timeout_s: float = 300.0) -> str | None:
    """``rasa data validate`` on a built project: its errors, and warnings the tenant's data caused; None when clean."""
    from gateway.assistants.data_validation import validate_project

    report = validate_project(project.domain, project.data, project.config, timeout_s=timeout_s)
    tenant_warnings = [w for w in report.unexplained if any(k in w.lower() for k in TENANT_DATA_WARNINGS)]
    if not report.errors and not tenant_warnings:
        return None
    return "; ".join((report.errors + tenant_warnings)[:5])
