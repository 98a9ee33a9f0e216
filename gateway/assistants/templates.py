"""The platform's skills (``bot/skills.yml``) and the templates a tenant's assistant starts from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gateway.settings import PROJECT_ROOT

BOT_DIR = PROJECT_ROOT / "bot"
TEMPLATES_DIR = BOT_DIR / "templates"


class UnknownTemplateError(ValueError):
    """No template of that name."""


@dataclass(frozen=True)
class Skill:
    """An optional skill: the intents, actions, forms and responses it owns."""

    name: str
    description: str
    intents: tuple[str, ...]
    actions: tuple[str, ...]
    forms: tuple[str, ...]
    responses: tuple[str, ...]


@dataclass(frozen=True)
class SkillCatalog:
    """Every optional skill, the core intents every assistant has, and the informational intents."""

    skills: dict[str, Skill]
    core_intents: tuple[str, ...]
    informational_intents: tuple[str, ...]
    #: Responses and intents Rasa's validator cannot see used, each with how it is used.
    unseen_by_validator: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, bot_dir: Path = BOT_DIR) -> "SkillCatalog":
        """Read ``skills.yml`` of the skills' Rasa project."""
        raw = yaml.safe_load((bot_dir / "skills.yml").read_text(encoding="utf-8")) or {}
        skills = {name: Skill(name, str(body.get("description", "")), *(tuple(body.get(key) or ())
                                                                        for key in ("intents", "actions", "forms",
                                                                                    "responses")))
                  for name, body in (raw.get("skills") or {}).items()}
        unseen = raw.get("unseen_by_rasa_validator") or {}
        return cls(skills, tuple(raw.get("core_intents") or ()), tuple(raw.get("informational_intents") or ()),
                   {**(unseen.get("responses") or {}), **(unseen.get("intents") or {})})

    def owner_of_intent(self, intent: str) -> str | None:
        """The optional skill owning ``intent`` (None for core and tenant-defined intents)."""
        return next((s.name for s in self.skills.values() if intent in s.intents), None)


@dataclass(frozen=True)
class AssistantTemplate:
    """A starting point for a tenant's assistant (``bot/templates/<name>/template.yml``).

    Attributes:
        name: ``retail``, ``blank``, …
        description: One line for people choosing.
        skills: Optional skills that are on.
        greeting: The greeting's text (``${assistant_name}`` and ``${business_name}`` are filled in).
        scope: What the assistant helps with, in the out-of-scope reply ("orders, returns, …").
        nlu_file: The Rasa NLU file the language data is copied from.
        intents: Only these intents are copied (all when None).
    """

    name: str
    description: str
    skills: tuple[str, ...]
    greeting: str
    scope: str
    nlu_file: Path
    intents: tuple[str, ...] | None

    @classmethod
    def load(cls, name: str, templates_dir: Path = TEMPLATES_DIR) -> "AssistantTemplate":
        """Read a template.

        Raises:
            UnknownTemplateError: No such template.
        """
        path = templates_dir / name / "template.yml"
        if not name.replace("_", "").replace("-", "").isalnum() or not path.is_file():
            raise UnknownTemplateError(f"unknown template {name!r}; choose one of: {', '.join(template_names(templates_dir))}")
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        intents = raw.get("intents")
        return cls(name, str(raw.get("description", "")), tuple(raw.get("skills") or ()), str(raw["greeting"]),
                   str(raw["scope"]), (path.parent / raw["nlu"]).resolve(), tuple(intents) if intents else None)

    def language_data(self) -> str:
        """The template's intents and examples as a Rasa NLU YAML document (the tenant's first copy)."""
        document: dict[str, Any] = yaml.safe_load(self.nlu_file.read_text(encoding="utf-8")) or {}
        blocks = []
        for block in document.get("nlu") or []:
            if "intent" in block and self.intents is not None and block["intent"] not in self.intents:
                continue
            if "regex" in block and self.intents is not None and "order_status" not in self.intents:
                continue  # the order-number pattern belongs to the order-status skill
            blocks.append(block)
        from gateway.assistants.rasa_files import rasa_yaml

        return rasa_yaml({"version": "3.1", "nlu": blocks})


def template_names(templates_dir: Path = TEMPLATES_DIR) -> list[str]:
    """Names of every template."""
    return sorted(p.parent.name for p in templates_dir.glob("*/template.yml"))


def load_assistant_file(path: Path) -> tuple[AssistantTemplate, dict[str, Any]]:
    """The template and raw settings of an assistant file like ``bot/tenants/northwind.yml``.

    Raises:
        UnknownTemplateError: The file names a template that does not exist.
    """
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return AssistantTemplate.load(str(raw.get("template", "retail"))), raw.get("settings") or {}
