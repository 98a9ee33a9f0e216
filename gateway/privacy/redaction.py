"""Redaction of personal data in text that leaves the conversation log (training data, exports).

Rules, applied in this order so one never hides another:

* IBANs (country code, check digits, 11-30 characters, valid mod-97 checksum) → ``[IBAN]``
* payment card numbers (13-19 digits, spaces or dashes allowed, valid Luhn checksum) → ``[CARD]``
* e-mail addresses → ``[EMAIL]``
* phone numbers (7-15 digits, optional ``+`` / brackets / separators) → ``[PHONE]``
* street addresses ("12 Baker Street", "Hauptstraße 5", "5 rue de Rivoli") → ``[ADDRESS]``

Order numbers (``A1234``), prices, dates and times are kept: they are what the bot needs to learn from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
_CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
_PHONE = re.compile(r"(?<![\w+])(?:\+|00)?\(?\d{1,4}\)?(?:[ .\-/]?\(?\d{1,4}\)?){2,6}(?![\w])")
_STREET_WORDS = (r"street|st\.|road|rd\.|avenue|ave\.?|lane|ln\.|boulevard|blvd\.?|drive|dr\.|way|court|ct\.|place|"
                 r"square|close|crescent|terrace|straße|strasse|str\.|weg|gasse|platz|allee")
_ADDRESS = re.compile(
    rf"\b\d{{1,5}}[a-z]?,?\s+(?:[A-Z][\w'-]+\s+){{1,4}}(?:{_STREET_WORDS})\b"  # 12 Baker Street
    rf"|\b[A-ZÄÖÜ][\wäöüß-]*(?:{_STREET_WORDS})\s+\d{{1,5}}[a-z]?\b"          # Hauptstraße 5
    rf"|\b\d{{1,5}},?\s+(?:rue|avenue|boulevard|place|via|calle|avenida)\s+(?:[\w'-]+\s?){{1,4}}",  # 5 rue de Rivoli
    re.IGNORECASE | re.UNICODE,
)


def _luhn(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return total % 10 == 0


def _iban_ok(candidate: str) -> bool:
    compact = candidate.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in moved)
    return int(number) % 97 == 1


@dataclass(frozen=True)
class Redaction:
    """Redacted text and what was found."""

    text: str
    found: dict[str, int]


class Redactor:
    """Replaces personal data with placeholders; deterministic and idempotent."""

    def redact(self, text: str) -> Redaction:
        """Redact one text."""
        found: dict[str, int] = {}

        def sub(pattern: re.Pattern[str], label: str, text: str, check: "object" = None) -> str:
            def replace(match: re.Match[str]) -> str:
                value = match.group(0)
                if check is not None and not check(value):  # type: ignore[operator]
                    return value
                found[label] = found.get(label, 0) + 1
                return f"[{label}]"
            return pattern.sub(replace, text)

        text = sub(_IBAN, "IBAN", text, _iban_ok)
        text = sub(_CARD, "CARD", text, lambda v: _luhn(re.sub(r"\D", "", v)))
        text = sub(_EMAIL, "EMAIL", text)
        text = sub(_PHONE, "PHONE", text, lambda v: 7 <= len(re.sub(r"\D", "", v)) <= 15 and not _looks_like_date(v))
        text = sub(_ADDRESS, "ADDRESS", text)
        return Redaction(text, found)

    def __call__(self, text: str) -> str:
        return self.redact(text).text


def _looks_like_date(value: str) -> bool:
    return bool(re.fullmatch(r"\d{1,4}[./-]\d{1,2}[./-]\d{1,4}", value.strip()))
