"""How the assistant's Rasa files are written, and how a training sentence is keyed.

Shared by the project builder, the assistant service and the review inbox (which writes accepted
examples into the same files).
"""

from __future__ import annotations

import re
from typing import Any

import yaml


def normalise(text: str) -> str:
    """Grouping key: lower case, single spaces, no trailing punctuation."""
    return re.sub(r"\s+", " ", text.strip().lower()).rstrip("?!. ")


class _LiteralDumper(yaml.SafeDumper):
    """Writes multi-line strings as ``|`` blocks, as Rasa's own files do."""


def _literal(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_LiteralDumper.add_representer(str, _literal)


def rasa_yaml(document: Any) -> str:
    """YAML as Rasa's own files look: keys in order, Unicode kept, multi-line strings as ``|`` blocks."""
    return yaml.dump(document, Dumper=_LiteralDumper, allow_unicode=True, sort_keys=False)
