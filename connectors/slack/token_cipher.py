"""Encrypts Slack bot tokens at rest with a key derived from the deployment's secret key."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken


class TokenCipher:
    """Fernet (AES-128-CBC + HMAC) with a key derived from ``secret_key``; rotating the secret needs re-install."""

    def __init__(self, secret_key: str) -> None:
        digest = hashlib.sha256(b"switchboard:slack-token:" + secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def encrypt(self, token: str) -> str:
        """Ciphertext of a token."""
        return self._fernet.encrypt(token.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        """The token back.

        Raises:
            ValueError: The ciphertext was made with another secret key or was altered.
        """
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("the stored Slack token cannot be decrypted with this secret key") from exc
