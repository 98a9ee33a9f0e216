"""A tenant's web-widget settings: look (title, colours, avatar, position) and who may embed it."""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

_HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


def normalise_origin(value: str) -> str:
    """``https://Shop.Example:443/path`` → ``https://shop.example``; refuses anything but http(s) origins.

    Raises:
        ValueError: Not an http(s) origin.
    """
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) origin")
    port = parts.port
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname.lower()
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


class WidgetConfig(BaseModel):
    """Everything a tenant configures about its widget.

    Attributes:
        title: Header title; empty shows the business's name (its assistant settings).
        accent: Main colour (header, launcher, customer bubbles), ``#rrggbb``.
        text_on_accent: Text colour on the accent, ``#rrggbb``.
        avatar: Up to 3 characters (initials or an emoji) shown in the header; no image URLs, so
            the widget never makes a third-party request.
        position: Corner of the launcher.
        greeting: Shown (not stored) when a conversation is empty; empty shows the assistant's greeting.
        allowed_origins: Host pages allowed to embed the widget (``https://shop.example``); empty
            allows any origin, which is only meant for development.
        csat_enabled: Ask for a 1-5 rating when people resolve a conversation.
    """

    model_config = ConfigDict(extra="forbid")

    title: str = Field(default="", max_length=60)
    accent: str = "#2f5bea"
    text_on_accent: str = "#ffffff"
    avatar: str = Field(default="", max_length=3)
    position: Literal["right", "left"] = "right"
    greeting: str = Field(default="", max_length=300)
    allowed_origins: list[str] = Field(default_factory=list, max_length=50)
    csat_enabled: bool = True

    @field_validator("accent", "text_on_accent")
    @classmethod
    def _hex_colour(cls, value: str) -> str:
        if not _HEX_COLOUR.match(value):
            raise ValueError("colours are #rrggbb")
        return value.lower()

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        return sorted({normalise_origin(origin) for origin in value})

    def allows_origin(self, origin: str | None) -> bool:
        """Whether a page of ``origin`` may use the widget (no ``Origin`` header: not a browser, allowed)."""
        if not self.allowed_origins or origin is None:
            return True
        try:
            return normalise_origin(origin) in self.allowed_origins
        except ValueError:
            return False

    def public(self) -> dict[str, object]:
        """What the widget itself needs (never the origin list)."""
        return self.model_dump(exclude={"allowed_origins"})
