"""Encryption of stored values and pseudonymous keys for chat ids.

MultiFernet: the newest key (first) encrypts, every key decrypts, so keys can be rotated without
downtime. Chat ids are never stored: only HMAC-SHA256 under the pseudonym key. Keys come from
configuration, never from the database.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from storage.errors import DecryptError as DecryptError  # raised here; defined with the others

# scrypt's parameters of the secret codes' hashes made before `hmac$` (still accepted; none made now).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**12, 8, 1


# The secret code shown beside a reference: 8 characters from the references' alphabet (no 0/O, 1/I/L), in
# lower case so that it is not taken for a reference. 31 ** 8 = 8.5e11 codes, 39.6 bits (docs/limits.md).
CODE_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
CODE_LENGTH = 8


def new_code() -> str:
    """A fresh random secret code such as k7mq-4xtd (`secrets`)."""
    chars = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return f"{chars[:4]}-{chars[4:]}"


def normalise_code(text: str) -> str:
    """`K7MQ 4XTD`, `k7mq-4xtd` -> `k7mq4xtd`: what is hashed and compared."""
    return re.sub(r"[\s\-_.\u2010-\u2015\u2212]", "", text).lower()


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

    def code_hash(self, code: str) -> str:
        """A keyed hash of a secret code: HMAC-SHA256 under the pseudonym key over a random salt and the
        code, stored as `hmac$<salt>$<digest>`. Fast on purpose (docs/limits.md, "The cost of guessing"):
        without the key a database copy gives nothing to guess against, and whoever has the key has the data
        key too. Only `code_matches` can use the result."""
        salt = os.urandom(16)
        return f"hmac${salt.hex()}${self._code_hmac(code, salt).hex()}"

    def code_matches(self, stored: str | None, code: str) -> bool:
        """True when `code` is the one `stored` was made from (constant time). Reads both the current
        `hmac$` form and the `scrypt$` form of reports sent before it."""
        if not stored:
            return False
        try:
            name, *fields = stored.split("$")
            if name == "hmac" and len(fields) == 2:
                salt, digest = fields
                found = self._code_hmac(code, bytes.fromhex(salt))
            elif name == "scrypt" and len(fields) == 5:
                n, r, p, salt, digest = fields
                if (int(n), int(r), int(p)) != (SCRYPT_N, SCRYPT_R, SCRYPT_P):
                    return False
                found = self._code_scrypt(code, bytes.fromhex(salt))
            else:
                return False
            expected = bytes.fromhex(digest)
        except ValueError:
            return False
        return hmac.compare_digest(expected, found)

    def _code_hmac(self, code: str, salt: bytes) -> bytes:
        message = b"status-code\x00" + salt + code.encode()
        return hmac.new(self._pseudonym_key, message, hashlib.sha256).digest()

    def _code_scrypt(self, code: str, salt: bytes) -> bytes:
        """The hash of codes made before `hmac$` (read only; nothing new is made with it)."""
        keyed = hmac.new(self._pseudonym_key, f"status-code\x00{code}".encode(), hashlib.sha256).digest()
        return hashlib.scrypt(keyed, salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
