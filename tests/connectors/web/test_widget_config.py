"""Widget settings: validation, origins, and the script's size budget."""

from __future__ import annotations

import gzip

import pytest
from pydantic import ValidationError

from connectors.web.config import WidgetConfig, normalise_origin
from gateway.api.pages import WIDGET_JS

GZIP_BUDGET_BYTES = 12 * 1024


@pytest.mark.parametrize(("raw", "expected"), [
    ("https://Shop.Example", "https://shop.example"),
    ("https://shop.example:443/some/page?x=1", "https://shop.example"),
    ("http://localhost:8080", "http://localhost:8080"),
])
def test_origins_are_normalised(raw: str, expected: str) -> None:
    assert normalise_origin(raw) == expected


@pytest.mark.parametrize("bad", ["javascript:alert(1)", "shop.example", "ftp://shop.example", ""])
def test_non_http_origins_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        normalise_origin(bad)


def test_allowed_origins_decide_who_may_embed_the_widget() -> None:
    config = WidgetConfig(allowed_origins=["https://shop.example"])
    assert config.allows_origin("https://shop.example")
    assert config.allows_origin("https://SHOP.example:443")
    assert not config.allows_origin("https://evil.example")
    assert not config.allows_origin("null")
    assert config.allows_origin(None)  # not a browser: the widget key and tokens still apply
    assert WidgetConfig().allows_origin("https://anything.example")  # none configured: development


@pytest.mark.parametrize("field", [{"accent": "red"}, {"accent": "#12345"}, {"text_on_accent": "url(x)"},
                                   {"avatar": "<img>"}, {"position": "top"}, {"unknown": 1}])
def test_bad_settings_are_refused(field: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        WidgetConfig.model_validate(field)


def test_the_public_view_never_lists_the_allowed_origins() -> None:
    assert "allowed_origins" not in WidgetConfig(allowed_origins=["https://shop.example"]).public()


def test_the_widget_script_stays_within_its_size_budget() -> None:
    size = len(gzip.compress(WIDGET_JS.read_bytes(), compresslevel=9))
    assert size <= GZIP_BUDGET_BYTES, f"widget.js is {size} bytes gzipped"


def test_the_widget_script_makes_no_third_party_requests() -> None:
    source = WIDGET_JS.read_text()
    # Only the gateway origin it was loaded from: no fonts, CDNs, analytics or image URLs.
    for forbidden in ("fetch(", "XMLHttpRequest", "<img", "@import", "googleapis", "cdn."):
        assert forbidden not in source
