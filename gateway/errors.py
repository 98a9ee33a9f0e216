"""The shape every refusal of the product has: a machine-readable ``code`` and a ``detail`` for people.

The API answers them as ``{"error": code, "detail": detail}``; each part of the product subclasses this
beside the built-in error it is (``ValueError`` for bad input, ``RuntimeError`` for a failed operation).
"""

from __future__ import annotations


class CodedError(Exception):
    """An error with an API error code and a detail that says what to fix.

    Args:
        code: Machine-readable error code (``unknown_version``, ``plan_limit`` …).
        detail: What went wrong, for people.
    """

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
