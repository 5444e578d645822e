"""Photos and screenshots sent in the web chat: checked by their own bytes, kept only encrypted.

The report keeps a reference (`web-upload:<random>`), as it keeps a Telegram file id or a Twilio media
URL; the bytes are encrypted with the newest encryption key (Fernet) and written under
`<data_dir>/web-uploads/`, never in clear on disk. `read` gives them back to staff tools.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, MultiFernet

PREFIX = "web-upload:"
FOLDER = "web-uploads"

# The first bytes of each accepted type: the declared type and the file name are never trusted.
_MAGIC: tuple[tuple[str, bytes, int], ...] = (
    ("image/jpeg", b"\xff\xd8\xff", 0),
    ("image/png", b"\x89PNG\r\n\x1a\n", 0),
    ("image/gif", b"GIF8", 0),
    ("image/webp", b"WEBP", 8),
)


def sniff(data: bytes) -> str | None:
    """The image type these bytes are, or None."""
    for kind, magic, offset in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            if kind == "image/webp" and not data.startswith(b"RIFF"):
                continue
            return kind
    return None


class UploadStore:
    """Encrypted files under one folder, named by a random reference."""

    def __init__(self, data_dir: Path, encryption_keys: Sequence[str]) -> None:
        self.folder = data_dir / FOLDER
        fernets = [Fernet(k.encode()) for k in encryption_keys]
        self._newest = fernets[0]
        self._all = MultiFernet(fernets)

    def _path(self, ref: str) -> Path:
        name = ref.removeprefix(PREFIX)
        if not name.isalnum():
            raise ValueError("not a web upload reference")
        return self.folder / f"{name}.bin"

    def _write(self, data: bytes) -> str:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        ref = PREFIX + secrets.token_hex(16)
        path = self._path(ref)
        token = self._newest.encrypt(data)
        partial = path.with_suffix(".part")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(token)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(partial, path)
        return ref

    async def save(self, data: bytes) -> str:
        """Encrypt and store; the reference to keep in the report."""
        return await asyncio.to_thread(self._write, data)

    def forget(self, refs: Sequence[str]) -> None:
        """Delete uploads that no report keeps (the person stopped, deleted or left)."""
        for ref in refs:
            self._path(ref).unlink(missing_ok=True)

    def read(self, ref: str) -> bytes:
        """The bytes behind a reference (for staff tools)."""
        return self._all.decrypt(self._path(ref).read_bytes())
