"""Builds a tenant's Rasa project from its three layers: skills, settings and language data.

    skills          bot/domain.yml, bot/data/rules.yml, bot/data/stories.yml, bot/skills.yml (the platform's)
    settings        names, greeting, skills on/off, the tenant's own texts (AssistantSettings)
    language data   the tenant's intents and examples (its copy of a template, or imported), plus the
                    examples its reviewers accepted in the inbox

Optional skills that are off, or whose intents have no examples, leave the project with their intents,
actions, forms and responses, and so does every rule, story and conversation test that mentions one.
Intents only the tenant has are added with rules that answer them from its help centre. The skills'
texts get the tenant's names; ``utter_*`` texts in the settings replace them or are added (a tenant's
``utter_answer_<intent>`` is what ``action_answer_question`` says when the help centre has no answer).
The bot folder itself is never edited.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

import yaml

from gateway.assistants.assistant_settings import AssistantSettings
from gateway.assistants.templates import BOT_DIR, AssistantTemplate, SkillCatalog
from gateway.assistants.rasa_files import normalise, rasa_yaml

#: What an intent only the tenant (or its reviewers) defined does: the help centre answers.
NEW_INTENT_ACTION = "action_answer_question"
#: The classifier component of the pipeline (its settings can be overridden per run).
CLASSIFIER_COMPONENT = "BertIntentSentimentClassifier"
#: Added for tenants that choose ``rules+ted`` (stories of their own that need generalisation).
TED_POLICY = {"name": "TEDPolicy", "max_history": 5, "epochs": 100, "random_seed": 42}
#: Rasa's own actions, always there.
RASA_DEFAULT_ACTIONS = frozenset({
    "action_listen", "action_restart", "action_session_start", "action_default_fallback", "action_deactivate_loop",
    "action_revert_fallback_events", "action_default_ask_affirmation", "action_default_ask_rephrase",
    "action_two_stage_fallback", "action_unlikely_intent", "action_back", "action_extract_slots"})
_EXAMPLE_LINE = re.compile(r"^\s*-\s+(.*)$")


class ProjectError(ValueError):
    """The tenant's layers do not make a project (broken language data, an intent without examples, …)."""


@dataclass(frozen=True)
class ReviewedExample:
    """One accepted example from the review inbox."""

    text: str
    intent: str


@dataclass(frozen=True)
class AssistantProject:
    """A Rasa project ready for ``rasa train``.

    Attributes:
        root: The work folder.
        config: ``config.yml`` inside it.
        domain: ``domain.yml`` inside it.
        data: The training-data folder inside it.
        tests: Conversation tests that apply to this assistant (``tests/``), or None when none do.
        holdout: The held-out NLU set restricted to this assistant's intents.
        intents: Every intent the model will know.
        new_intents: Intents only the tenant or its reviewers defined.
        skills: Optional skills that are on.
        reviewed: How many reviewed examples were added.
        replaced: Examples dropped because a reviewer labelled the same text.
        project_hash: Hash of the generated config, domain and data.
    """

    root: Path
    config: Path
    domain: Path
    data: Path
    tests: Path | None
    holdout: Path
    intents: list[str]
    new_intents: list[str]
    skills: list[str]
    reviewed: int
    replaced: int
    project_hash: str


def safe_example_text(text: str) -> str:
    """One line Rasa reads back as exactly this text (no entity markup, no line breaks)."""
    text = re.sub(r"\s+", " ", text).strip()
    # `[x](y)` and `[x]{...}` would be read as entity annotations.
    return text.replace("](", "] (").replace("]{", "] {")


def _names(entries: list[Any] | None) -> list[str]:
    return [e if isinstance(e, str) else next(iter(e)) for e in entries or []]


def _example_lines(block: dict[str, Any]) -> list[str]:
    raw = block.get("examples")
    return [line for line in raw.splitlines() if _EXAMPLE_LINE.match(line)] if isinstance(raw, str) else []


def parse_language_data(text: str, source: str = "language data") -> list[dict[str, Any]]:
    """The ``nlu`` blocks of a Rasa NLU document.

    Raises:
        ProjectError: Not YAML, not an NLU document, or an intent without examples.
    """
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise ProjectError(f"{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from exc
    if not isinstance(document, dict) or not isinstance(document.get("nlu", []), list):
        raise ProjectError(f"{source}: expected a Rasa NLU document with an `nlu:` list")
    blocks = [b for b in document.get("nlu") or [] if isinstance(b, dict)]
    for block in blocks:
        if "intent" in block and not _example_lines(block):
            raise ProjectError(f"{source}: intent {block['intent']!r} has no examples")
    return blocks


class AssistantProjectBuilder:
    """Writes tenants' Rasa projects.

    Args:
        bot_dir: The skills' Rasa project.
    """

    def __init__(self, bot_dir: Path = BOT_DIR) -> None:
        self.bot_dir = bot_dir
        self.catalog = SkillCatalog.load(bot_dir)

    def build(self, root: Path, tenant_id: str, template: AssistantTemplate, settings: AssistantSettings,
              language_data: str, reviewed: list[ReviewedExample] | None = None,
              classifier_settings: dict[str, Any] | None = None) -> AssistantProject:
        """Write the tenant's project to ``root`` (emptied first).

        Args:
            classifier_settings: Settings of the intent classifier that replace the bot's for this run
                (e.g. ``{"finetune": "auto"}`` for a refinement run).

        Raises:
            ProjectError: The language data is broken, or a skill named in the settings does not exist.
        """
        reviewed = reviewed or []
        unknown = sorted(set(settings.skills or ()) - set(self.catalog.skills))
        if unknown:
            raise ProjectError(f"unknown skills: {', '.join(unknown)}; known: {', '.join(sorted(self.catalog.skills))}")
        if root.exists():
            shutil.rmtree(root)
        data = root / "data"
        data.mkdir(parents=True)

        # Language data: the tenant's blocks, minus texts a reviewer labelled, plus the reviewed examples.
        blocks = parse_language_data(language_data)
        reviewed_texts = {normalise(e.text) for e in reviewed}
        replaced = sum(self._drop_relabelled(block, reviewed_texts) for block in blocks)
        by_intent: defaultdict[str, list[str]] = defaultdict(list)
        seen: set[str] = set()
        for example in reviewed:
            key = normalise(example.text)
            if key and key not in seen:
                seen.add(key)
                by_intent[example.intent].append(safe_example_text(example.text))
        with_examples = {b["intent"] for b in blocks if "intent" in b and _example_lines(b)} | set(by_intent)

        # Which skills are on, and so which intents, actions, forms and responses stay.
        enabled = set(template.skills if settings.skills is None else settings.skills)
        active = sorted(s for s in enabled if self.catalog.skills[s].intents[0] in with_examples)
        inactive = [self.catalog.skills[s] for s in self.catalog.skills if s not in active]
        dropped_intents = {i for s in inactive for i in s.intents}
        domain = yaml.safe_load((self.bot_dir / "domain.yml").read_text(encoding="utf-8"))
        skill_owned = {i for s in self.catalog.skills.values() for i in s.intents}
        system = [i for i in _names(domain.get("intents")) if i not in skill_owned and i not in self.catalog.core_intents]
        kept = [i for i in _names(domain.get("intents"))
                if i in system or (i in with_examples and i not in dropped_intents)]
        new_intents = sorted(i for i in with_examples if i not in _names(domain.get("intents")))
        intents = kept + new_intents
        blocks = [b for b in blocks if "intent" not in b or (b["intent"] in intents and _example_lines(b))]
        if "order_status" not in active:  # the order-number pattern serves only the order-status form
            blocks = [b for b in blocks if b.get("regex") != "order_number"]
        by_intent = defaultdict(list, {i: texts for i, texts in by_intent.items() if i in intents})

        self._write_domain(root / "domain.yml", domain, template, settings, intents, new_intents, inactive)
        self._write_config(root / "config.yml", tenant_id, settings, classifier_settings)
        (data / "nlu.yml").write_text("# The tenant's language data (generated for one training run).\n"
                                      + rasa_yaml({"version": "3.1", "nlu": blocks}), encoding="utf-8")
        if by_intent:
            nlu = [{"intent": i, "examples": "".join(f"- {t}\n" for t in texts)} for i, texts in sorted(by_intent.items())]
            (data / "reviewed.yml").write_text("# Accepted examples from the review inbox (generated for one training run).\n"
                                               + rasa_yaml({"version": "3.1", "nlu": nlu}), encoding="utf-8")
        final_domain = yaml.safe_load((root / "domain.yml").read_text(encoding="utf-8"))
        available = self._available(final_domain)
        for name in ("rules", "stories"):
            for source in sorted((self.bot_dir / "data").glob("*.yml")):
                document = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
                if document.get(name):
                    kept_entries = [e for e in document[name] if self._applies(e, available)]
                    (data / source.name).write_text(rasa_yaml({"version": "3.1", name: kept_entries}), encoding="utf-8")
        if new_intents:
            rules = [{"rule": f"{intent} is answered from the help centre ({'answered' if answered else 'not answered'})",
                      "steps": [{"intent": intent}, {"action": NEW_INTENT_ACTION},
                                {"slot_was_set": [{"kb_answered": answered}]}]}
                     for intent in new_intents for answered in (True, False)]
            (data / "tenant_rules.yml").write_text(rasa_yaml({"version": "3.1", "rules": rules}), encoding="utf-8")
        tests = self._write_tests(root / "tests", available)
        holdout = self._write_holdout(root / "evaluation" / "nlu_holdout.yml", set(intents))
        return AssistantProject(root=root, config=root / "config.yml", domain=root / "domain.yml", data=data,
                                tests=tests, holdout=holdout, intents=sorted(intents), new_intents=new_intents,
                                skills=active, reviewed=sum(len(v) for v in by_intent.values()), replaced=replaced,
                                project_hash=_hash_files([root / "config.yml", root / "domain.yml",
                                                          *sorted(data.glob("*.yml"))], root))

    # ------------------------------------------------------------------ parts
    def _write_config(self, path: Path, tenant_id: str, settings: AssistantSettings,
                      classifier_settings: dict[str, Any] | None) -> None:
        config = yaml.safe_load((self.bot_dir / "config.yml").read_text(encoding="utf-8"))
        config["assistant_id"] = f"switchboard-{tenant_id}"
        for component in config.get("pipeline") or []:
            if classifier_settings and str(component.get("name", "")).endswith(CLASSIFIER_COMPONENT):
                component.update(classifier_settings)
        if settings.dialogue_policies == "rules+ted" and not any(p.get("name") == "TEDPolicy" for p in config["policies"]):
            config["policies"].append(dict(TED_POLICY))
        path.write_text(rasa_yaml(config), encoding="utf-8")

    def _write_domain(self, path: Path, domain: dict[str, Any], template: AssistantTemplate,
                      settings: AssistantSettings, intents: list[str], new_intents: list[str],
                      inactive: list[Any]) -> None:
        gone_actions = {a for s in inactive for a in (*s.actions, *s.forms)}
        gone_responses = {r for s in inactive for r in s.responses}
        domain["intents"] = [i for i in domain.get("intents") or [] if _names([i])[0] in intents] + new_intents
        domain["actions"] = [a for a in domain.get("actions") or [] if a not in gone_actions]
        domain["forms"] = {k: v for k, v in (domain.get("forms") or {}).items() if k not in gone_actions}
        if not domain["forms"]:
            domain.pop("forms")
        names = {"assistant_name": settings.display_name(), "business_name": settings.business_name,
                 "scope": template.scope}
        names["greeting"] = settings.greeting_text(template.greeting)
        responses: dict[str, Any] = {}
        for name, variations in (domain.get("responses") or {}).items():
            if name in gone_responses:
                continue
            responses[name] = [self._render(v, names, intents) for v in variations]
        for name, text in settings.responses.items():
            rendered = Template(text).safe_substitute(names)
            if name in responses:
                responses[name] = [{**v, "text": rendered} for v in responses[name]]
            else:
                responses[name] = [{"text": rendered}]
        domain["responses"] = responses
        path.write_text(rasa_yaml(domain), encoding="utf-8")

    @staticmethod
    def _render(variation: dict[str, Any], names: dict[str, str], intents: list[str]) -> dict[str, Any]:
        rendered = dict(variation)
        if isinstance(rendered.get("text"), str):
            rendered["text"] = Template(rendered["text"]).safe_substitute(names)
        if rendered.get("buttons"):
            # A button for an intent the assistant does not have would send it into fallback.
            rendered["buttons"] = [b for b in rendered["buttons"]
                                   if not str(b.get("payload", "")).startswith("/")
                                   or str(b["payload"])[1:].split("{")[0] in intents]
            if not rendered["buttons"]:
                rendered.pop("buttons")
        return rendered

    @staticmethod
    def _available(domain: dict[str, Any]) -> set[str]:
        return (set(_names(domain.get("intents"))) | set(domain.get("actions") or []) | set(domain.get("forms") or {})
                | set(domain.get("responses") or {}) | RASA_DEFAULT_ACTIONS)

    @staticmethod
    def _applies(entry: dict[str, Any], available: set[str]) -> bool:
        """Whether every intent, action and form a rule, story or test mentions is in the project."""
        for step in [*(entry.get("steps") or []), *(entry.get("condition") or [])]:
            if not isinstance(step, dict):
                continue
            for key in ("intent", "action", "active_loop"):
                value = step.get(key)
                if isinstance(value, str) and value not in available:
                    return False
            for alternative in step.get("or") or []:
                if isinstance(alternative, dict) and alternative.get("intent") not in available:
                    return False
        return True

    def _write_tests(self, folder: Path, available: set[str]) -> Path | None:
        stories = []
        for source in sorted((self.bot_dir / "tests").glob("*.yml")):
            document = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
            stories += [s for s in document.get("stories") or [] if self._applies(s, available)]
        if not stories:
            return None
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "test_stories.yml").write_text(rasa_yaml({"version": "3.1", "stories": stories}), encoding="utf-8")
        return folder

    def _write_holdout(self, path: Path, intents: set[str]) -> Path:
        document = yaml.safe_load((self.bot_dir / "evaluation" / "nlu_holdout.yml").read_text(encoding="utf-8")) or {}
        blocks = [b for b in document.get("nlu") or [] if b.get("intent") in intents or b.get("intent") == "out_of_scope"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rasa_yaml({"version": "3.1", "nlu": blocks}), encoding="utf-8")
        return path

    @staticmethod
    def _drop_relabelled(block: dict[str, Any], reviewed_texts: set[str]) -> int:
        """Remove examples whose text a reviewer labelled (their label replaces the tenant's)."""
        raw = block.get("examples")
        if not block.get("intent") or not isinstance(raw, str) or not reviewed_texts:
            return 0
        kept, dropped = [], 0
        for line in raw.splitlines():
            match = _EXAMPLE_LINE.match(line)
            plain = re.sub(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})", r"\1", match.group(1)) if match else ""
            if match and normalise(plain) in reviewed_texts:
                dropped += 1
                continue
            kept.append(line)
        block["examples"] = "\n".join(kept) + "\n"
        return dropped


def _hash_files(paths: list[Path], root: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
