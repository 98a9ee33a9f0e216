"""What a tenant decides about its assistant: its persona, its skills, the texts it writes itself."""

from __future__ import annotations

import re
from string import Template
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Names of responses a tenant may write: Rasa's ``utter_`` convention.
RESPONSE_NAME = re.compile(r"^utter_[a-z0-9_]{1,80}$")
MAX_RESPONSE_CHARS = 2000


class AssistantSettings(BaseModel):
    """A tenant's settings layer.

    Attributes:
        business_name: The business as customers know it ("Northwind Goods").
        assistant_name: How the assistant introduces itself; ``the <business> assistant`` when unset.
        greeting: The greeting's text; the template's when unset. ``${assistant_name}`` and
            ``${business_name}`` are filled in.
        skills: Optional skills that are on (``bot/skills.yml``); the template's when unset.
        responses: Texts of responses the tenant writes or keeps (``utter_<name>`` → text): overrides of
            the skills' texts, and ``utter_answer_<intent>`` texts used when the help centre has no answer.
        dialogue_policies: ``rules`` (rule and memoization policies: small, fast, what the skills need) or
            ``rules+ted`` (adds TED for tenants whose own stories need generalisation; ~10× the memory).
    """

    model_config = ConfigDict(extra="forbid")

    business_name: str = Field(min_length=1, max_length=200)
    assistant_name: str | None = Field(default=None, min_length=1, max_length=200)
    greeting: str | None = Field(default=None, min_length=1, max_length=MAX_RESPONSE_CHARS)
    skills: list[str] | None = None
    responses: dict[str, str] = Field(default_factory=dict)
    dialogue_policies: Literal["rules", "rules+ted"] = "rules"

    @field_validator("responses")
    @classmethod
    def _response_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not RESPONSE_NAME.match(name):
                raise ValueError(f"response names look like utter_<lowercase_name>, not {name!r}")
            if not isinstance(text, str) or not text.strip() or len(text) > MAX_RESPONSE_CHARS:
                raise ValueError(f"{name}: the text must have 1-{MAX_RESPONSE_CHARS} characters")
        return value

    def display_name(self) -> str:
        """The assistant's name as it introduces itself."""
        return self.assistant_name or f"the {self.business_name} assistant"

    def greeting_text(self, template_greeting: str) -> str:
        """The greeting customers read: the tenant's own or the template's, names filled in."""
        names = {"assistant_name": self.display_name(), "business_name": self.business_name}
        return Template(self.greeting or template_greeting).safe_substitute(names)
