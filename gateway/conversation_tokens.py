"""Tokens that bind a client to one conversation (knowing an id is not enough to write into it)."""

from __future__ import annotations

import base64
import hashlib
import hmac


class ConversationTokenSigner:
    """Signs and checks ``tenant:conversation`` pairs with the deployment's secret key."""

    def __init__(self, secret_key: str) -> None:
        self._key = secret_key.encode()

    def sign(self, tenant_id: str, conversation_id: str) -> str:
        """Return the token for a conversation of a tenant."""
        digest = hmac.new(self._key, f"{tenant_id}:{conversation_id}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def verify(self, tenant_id: str, conversation_id: str, token: str | None) -> bool:
        """Constant-time check of a token."""
        if not token or not token.isascii():  # compare_digest refuses non-ASCII str: a forged token, not a 500
            return False
        return hmac.compare_digest(self.sign(tenant_id, conversation_id), token)
