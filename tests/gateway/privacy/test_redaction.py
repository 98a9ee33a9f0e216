"""Redaction rules: what is personal goes, what the bot learns from stays."""

from __future__ import annotations

import pytest

from gateway.privacy.redaction import Redactor

redact = Redactor()


@pytest.mark.parametrize(("text", "expected"), [
    ("mail me at jane.doe+shop@example.co.uk please", "mail me at [EMAIL] please"),
    ("call +44 20 7946 0958 tomorrow", "call [PHONE] tomorrow"),
    ("my number is (555) 123-4567", "my number is [PHONE]"),
    ("card 4111 1111 1111 1111 was charged twice", "card [CARD] was charged twice"),
    ("card 4111-1111-1111-1111", "card [CARD]"),
    ("refund to DE89 3704 0044 0532 0130 00", "refund to [IBAN]"),
    ("IBAN GB82WEST12345698765432", "IBAN [IBAN]"),
    ("send it to 221B Baker Street, London", "send it to [ADDRESS], London"),
    ("ich wohne in der Hauptstraße 5", "ich wohne in der [ADDRESS]"),
    ("livrez au 5 rue de Rivoli", "livrez au [ADDRESS]"),
])
def test_personal_data_is_replaced(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", [
    "where is my order A1234?",
    "it cost 49.99 and arrived on 2026-11-03",
    "I ordered 3 items on 12/11/2026 at 14:30",
    "my card ends in 1234",
    "order number 123456",
    "4111 1111 1111 1112 is not a valid card",  # fails Luhn
    "DE00 1234 5678 9012 3456 78",  # fails mod-97
])
def test_what_is_not_personal_is_kept(text: str) -> None:
    assert redact(text) == text


def test_redaction_is_idempotent_and_counts_findings() -> None:
    result = redact.redact("jane@example.com, 4111 1111 1111 1111, jane@example.com")
    assert result.text == "[EMAIL], [CARD], [EMAIL]"
    assert result.found == {"EMAIL": 2, "CARD": 1}
    assert redact(result.text) == result.text
