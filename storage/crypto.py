"""Encryption of stored values and pseudonymous keys for chat ids.

MultiFernet: the newest key (first) encrypts, every key decrypts, so keys can be rotated without
downtime. Chat ids are never stored: only HMAC-SHA256 under the pseudonym key. Keys come from
configuration, never from the database.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class DecryptError(Exception):
    """A stored value could not be decrypted with any configured key."""


class Cipher:
    """Encrypts and decrypts stored values; makes pseudonyms for chat ids."""

    def __init__(self, encryption_keys: Sequence[str], pseudonym_key: str) -> None:
        if not encryption_keys:
            raise ValueError("at least one encryption key is needed")
        self._fernets = [Fernet(k.encode() if isinstance(k, str) else k) for k in encryption_keys]
        self._multi = MultiFernet(self._fernets)
        self._newest = self._fernets[0]
        self._pseudonym_key = pseudonym_key.encode()

    def encrypt(self, text: str) -> str:
        """Encrypt text under the newest key."""
        return self._multi.encrypt(text.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """Decrypt with whichever configured key made it."""
        try:
            return self._multi.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise DecryptError("a stored value could not be decrypted with any configured key") from exc

    def encrypt_json(self, value: Any) -> str:
        """Encrypt any JSON-serialisable value."""
        return self.encrypt(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str))

    def decrypt_json(self, token: str) -> Any:
        """Decrypt a value made by encrypt_json."""
        return json.loads(self.decrypt(token))

    def is_current(self, token: str) -> bool:
        """True when the newest key already decrypts this token (nothing to rotate)."""
        try:
            self._newest.decrypt(token.encode("ascii"))
        except InvalidToken:
            return False
        return True

    def rotate(self, token: str) -> str:
        """Re-encrypt a token under the newest key, keeping its original timestamp."""
        try:
            return self._multi.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken as exc:
            raise DecryptError("a stored value could not be decrypted with any configured key") from exc

    def pseudonym(self, channel: str, chat_id: str) -> str:
        """A stable key for a chat that does not reveal the chat id (HMAC-SHA256, hex)."""
        message = f"{channel}\x00{chat_id}".encode()
        return hmac.new(self._pseudonym_key, message, hashlib.sha256).hexdigest()
