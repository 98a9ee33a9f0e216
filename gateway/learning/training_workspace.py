"""Builds the Rasa project one retraining run trains on: the bot's own data plus reviewed examples.

The bot folder is never edited. A copy of its config, domain and data is written to a work folder;
accepted examples from the review inbox are added as ``data/reviewed.yml`` (a bot example with the
same text is dropped: the reviewer's label wins). Intents the domain does not know yet are added to
it, with rules that send them to the help centre (``action_answer_question``), so a new intent works
at once and offers a person when the help centre has no answer.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gateway.learning.review_inbox import normalise, rasa_yaml
from gateway.settings import PROJECT_ROOT

BOT_DIR = PROJECT_ROOT / "bot"
#: What the default bot does with an intent that only reviewers have defined.
NEW_INTENT_ACTION = "action_answer_question"
_EXAMPLE_LINE = re.compile(r"^\s*-\s+(.*)$")


@dataclass(frozen=True)
class ReviewedExample:
    """One accepted example from the review inbox."""

    text: str
    intent: str


@dataclass(frozen=True)
class TrainingWorkspace:
    """A Rasa project ready for ``rasa train``.

    Attributes:
        root: The work folder.
        config: ``config.yml`` inside it.
        domain: ``domain.yml`` inside it.
        data: The training-data folder inside it.
        intents: Every intent the model will know.
        new_intents: Intents that came from reviewers only.
        reviewed: How many reviewed examples were added.
        replaced: Bot examples dropped because a reviewer labelled the same text.
        bot_data_hash: Hash of the bot files the workspace was built from.
    """

    root: Path
    config: Path
    domain: Path
    data: Path
    intents: list[str]
    new_intents: list[str]
    reviewed: int
    replaced: int
    bot_data_hash: str


def bot_data_hash(bot_dir: Path = BOT_DIR) -> str:
    """Hash of what a model is trained from: config, domain, NLU / stories / rules and sentiment data."""
    digest = hashlib.sha256()
    for path in [bot_dir / "config.yml", bot_dir / "domain.yml", *sorted((bot_dir / "data").rglob("*.yml")),
                 *sorted((bot_dir / "sentiment").rglob("*.csv"))]:
        if path.exists():
            digest.update(path.relative_to(bot_dir).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def safe_example_text(text: str) -> str:
    """One line Rasa reads back as exactly this text (no entity markup, no line breaks)."""
    text = re.sub(r"\s+", " ", text).strip()
    # `[x](y)` and `[x]{...}` would be read as entity annotations.
    return text.replace("](", "] (").replace("]{", "] {")


def _domain_intents(domain: dict[str, Any]) -> list[str]:
    return [i if isinstance(i, str) else next(iter(i)) for i in domain.get("intents", []) or []]


#: The classifier component of the bot's pipeline (its settings can be overridden per run).
CLASSIFIER_COMPONENT = "BertIntentSentimentClassifier"


class TrainingWorkspaceBuilder:
    """Writes training workspaces.

    Args:
        bot_dir: The Rasa project to start from.
    """

    def __init__(self, bot_dir: Path = BOT_DIR) -> None:
        self.bot_dir = bot_dir

    def build(self, root: Path, reviewed: list[ReviewedExample],
              classifier_settings: dict[str, Any] | None = None) -> TrainingWorkspace:
        """Write the project to ``root`` (emptied first).

        Args:
            classifier_settings: Settings of the intent classifier that replace the bot's for this run
                (e.g. ``{"finetune": "auto"}`` for a refinement run).
        """
        if root.exists():
            shutil.rmtree(root)
        data = root / "data"
        data.mkdir(parents=True)
        shutil.copy2(self.bot_dir / "config.yml", root / "config.yml")
        if classifier_settings:
            config = yaml.safe_load((root / "config.yml").read_text(encoding="utf-8"))
            for component in config.get("pipeline") or []:
                if str(component.get("name", "")).endswith(CLASSIFIER_COMPONENT):
                    component.update(classifier_settings)
            (root / "config.yml").write_text(rasa_yaml(config), encoding="utf-8")
        reviewed_texts = {normalise(e.text) for e in reviewed}
        replaced = 0
        for source in sorted((self.bot_dir / "data").rglob("*.yml")):
            target = data / source.relative_to(self.bot_dir / "data")
            target.parent.mkdir(parents=True, exist_ok=True)
            document = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
            if document.get("nlu"):
                replaced += self._drop_relabelled(document, reviewed_texts)
                target.write_text(rasa_yaml(document),
                                  encoding="utf-8")
            else:
                shutil.copy2(source, target)

        domain = yaml.safe_load((self.bot_dir / "domain.yml").read_text(encoding="utf-8"))
        known = _domain_intents(domain)
        by_intent: defaultdict[str, list[str]] = defaultdict(list)
        seen: set[str] = set()
        for example in reviewed:
            key = normalise(example.text)
            if key in seen or not key:
                continue
            seen.add(key)
            by_intent[example.intent].append(safe_example_text(example.text))
        new_intents = sorted(i for i in by_intent if i not in known)
        if by_intent:
            nlu = [{"intent": intent, "examples": "".join(f"- {t}\n" for t in texts)}
                   for intent, texts in sorted(by_intent.items())]
            (data / "reviewed.yml").write_text(
                "# Accepted examples from the review inbox (generated for one training run).\n"
                + rasa_yaml({"version": "3.1", "nlu": nlu}),
                encoding="utf-8")
        if new_intents:
            domain["intents"] = list(domain.get("intents", [])) + new_intents
            rules = []
            for intent in new_intents:
                for answered in (True, False):
                    rules.append({"rule": f"reviewed intent {intent} goes to the help centre ({'answered' if answered else 'not answered'})",
                                  "steps": [{"intent": intent}, {"action": NEW_INTENT_ACTION},
                                            {"slot_was_set": [{"kb_answered": answered}]}]})
            (data / "reviewed_rules.yml").write_text(
                rasa_yaml({"version": "3.1", "rules": rules}),
                encoding="utf-8")
            (root / "domain.yml").write_text(rasa_yaml(domain),
                                             encoding="utf-8")
        else:
            shutil.copy2(self.bot_dir / "domain.yml", root / "domain.yml")
        return TrainingWorkspace(root=root, config=root / "config.yml", domain=root / "domain.yml", data=data,
                                 intents=sorted(set(known) | set(by_intent)), new_intents=new_intents,
                                 reviewed=sum(len(v) for v in by_intent.values()), replaced=replaced,
                                 bot_data_hash=bot_data_hash(self.bot_dir))

    @staticmethod
    def _drop_relabelled(document: dict[str, Any], reviewed_texts: set[str]) -> int:
        """Remove bot examples whose text a reviewer labelled (their label replaces the bot's)."""
        dropped = 0
        for block in document.get("nlu", []) or []:
            raw = block.get("examples")
            if not block.get("intent") or not isinstance(raw, str):
                continue
            kept = []
            for line in raw.splitlines():
                match = _EXAMPLE_LINE.match(line)
                plain = re.sub(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})", r"\1", match.group(1)) if match else ""
                if match and normalise(plain) in reviewed_texts:
                    dropped += 1
                    continue
                kept.append(line)
            block["examples"] = "\n".join(kept) + "\n"
        return dropped
