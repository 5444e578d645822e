"""Photos and screenshots sent in the web chat: checked by their own bytes, kept only encrypted.

The report keeps a reference (`web-upload:<random>`); the bytes go to the one evidence store
(storage/evidence.py): encrypted with the newest encryption key (Fernet), with the SHA-256 of the original,
under `<data_dir>/web-uploads/`, never in clear on disk. `read` gives them back to staff tools.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from storage.evidence import EvidenceStore, sniff

__all__ = ["PREFIX", "UploadStore", "sniff"]

PREFIX = "web-upload:"


def UploadStore(data_dir: Path, encryption_keys: Sequence[str]) -> EvidenceStore:
    """The web chat's photos: the evidence store, with references `web-upload:<random>`."""
    return EvidenceStore(data_dir, encryption_keys, prefix=PREFIX)
