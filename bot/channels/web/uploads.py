"""Photos and screenshots sent in the web chat: checked by their own bytes, kept only encrypted.

The report keeps a reference (`web-upload:<random>`); the bytes go to the one evidence store
(storage/evidence.py): encrypted with the newest encryption key (Fernet), with the SHA-256 of the original,
under `<data_dir>/web-uploads/`, never in clear on disk. `read` gives them back to staff tools.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from storage.evidence import EvidenceStore

PREFIX = "web-upload:"

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


def UploadStore(data_dir: Path, encryption_keys: Sequence[str]) -> EvidenceStore:
    """The web chat's photos: the evidence store, with references `web-upload:<random>`."""
    return EvidenceStore(data_dir, encryption_keys, prefix=PREFIX)
