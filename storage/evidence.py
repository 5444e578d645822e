"""The evidence store: photos and files people send, kept only encrypted under `data_dir`.

One store for every channel (the web chat's uploads today). A file is named by a random reference
(`web-upload:<hex>` for web chat uploads, `evidence:<hex>` for the others), never by a platform id. The
plaintext inside the Fernet token (newest key) starts with a small header holding the SHA-256 of the
original bytes, so staff tools can show and check it; files and folders are owner-only. `read` checks the
hash; `rotate` re-encrypts under the newest key; `forget` deletes. A file whose draft ended without a
report goes at once (bot.app.evidence.dropped_files), and purge sweeps any left that nothing names.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from storage.errors import EvidenceError as EvidenceError  # raised here; defined with the others

# Reference prefix -> folder under data_dir. The web chat's folder keeps its first name.
FOLDERS: dict[str, str] = {"web-upload:": "web-uploads", "evidence:": "evidence"}
_HEADER = b"RBEV1 "  # then 64 hex digits of SHA-256 and a newline, then the original bytes


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


@dataclass(frozen=True)
class Evidence:
    """One stored file, decrypted: its bytes, size and SHA-256 (hex)."""

    data: bytes
    sha256: str

    @property
    def size(self) -> int:
        return len(self.data)


def is_stored(ref: str) -> bool:
    """Whether a reference names a file in this store (not a platform id or URL)."""
    return any(ref.startswith(prefix) for prefix in FOLDERS)


def refs_in(value: object) -> set[str]:
    """Every reference of this store inside a draft's or a report's answers (JSON), wherever kept."""
    found: set[str] = set()
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            if is_stored(item):
                found.add(item)
        elif isinstance(item, dict):
            todo.extend(item.values())
        elif isinstance(item, list | tuple):
            todo.extend(item)
    return found


def _seal(data: bytes) -> bytes:
    return _HEADER + hashlib.sha256(data).hexdigest().encode() + b"\n" + data


def _open(plain: bytes) -> Evidence:
    if not plain.startswith(_HEADER):  # stored before the hash was recorded
        return Evidence(plain, hashlib.sha256(plain).hexdigest())
    head = len(_HEADER)
    recorded = plain[head : head + 64].decode("ascii")
    data = plain[head + 65 :]
    if hashlib.sha256(data).hexdigest() != recorded:
        raise EvidenceError("the file's bytes do not match its recorded SHA-256")
    return Evidence(data, recorded)


class EvidenceStore:
    """Encrypted files under `data_dir`, named by a random reference."""

    def __init__(self, data_dir: Path, encryption_keys: Sequence[str], *, prefix: str = "evidence:") -> None:
        if prefix not in FOLDERS:
            raise ValueError(f"unknown evidence prefix {prefix!r}")
        self.data_dir = data_dir
        self.prefix = prefix
        self.folder = data_dir / FOLDERS[prefix]
        fernets = [Fernet(k.encode()) for k in encryption_keys]
        self._newest = fernets[0]
        self._all = MultiFernet(fernets)

    def path(self, ref: str) -> Path:
        for prefix, folder in FOLDERS.items():
            if ref.startswith(prefix):
                name = ref.removeprefix(prefix)
                if name.isalnum():
                    return self.data_dir / folder / f"{name}.bin"
        raise EvidenceError("not an evidence reference")

    @staticmethod
    def _write_private(path: Path, token: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = path.with_suffix(".part")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(token)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(partial, path)

    def write(self, data: bytes) -> tuple[str, str]:
        """Encrypt and store; the reference to keep in the report and the SHA-256 of the original."""
        ref = self.prefix + secrets.token_hex(16)
        self._write_private(self.path(ref), self._newest.encrypt(_seal(data)))
        return ref, hashlib.sha256(data).hexdigest()

    def write_as(self, ref: str, data: bytes) -> str:
        """Encrypt and store under a reference given earlier (a download the step left to the delivery
        loop); the SHA-256 of the original."""
        self._write_private(self.path(ref), self._newest.encrypt(_seal(data)))
        return hashlib.sha256(data).hexdigest()

    async def save(self, data: bytes) -> str:
        """Encrypt and store (in a thread); the reference to keep in the report."""
        ref, _ = await asyncio.to_thread(self.write, data)
        return ref

    def read(self, ref: str) -> bytes:
        """The original bytes behind a reference (for staff tools)."""
        return self.open(ref).data

    def open(self, ref: str) -> Evidence:
        """The original bytes with their SHA-256, checked against the one recorded."""
        try:
            return _open(self._all.decrypt(self.path(ref).read_bytes()))
        except InvalidToken as exc:
            raise EvidenceError("no encryption key opens this file") from exc

    def forget(self, refs: Sequence[str]) -> int:
        """Delete files (the person stopped, or the report was erased or purged). Returns how many."""
        gone = 0
        for ref in refs:
            path = self.path(ref)
            if path.exists():
                path.unlink()
                gone += 1
        return gone

    def files(self) -> Iterator[Path]:
        """Every stored file, in every folder."""
        for folder in FOLDERS.values():
            where = self.data_dir / folder
            if where.is_dir():
                yield from sorted(where.glob("*.bin"))

    def stored(self) -> Iterator[tuple[str, float]]:
        """Every stored file's reference, with the time it was written (seconds since the epoch)."""
        for prefix, folder in FOLDERS.items():
            where = self.data_dir / folder
            if where.is_dir():
                for path in sorted(where.glob("*.bin")):
                    yield prefix + path.stem, path.stat().st_mtime

    def rotate(self) -> tuple[int, int]:
        """Re-encrypt every file under the newest key. Returns (re-encrypted, already current)."""
        rotated = current = 0
        for path in self.files():
            token = path.read_bytes()
            try:
                self._newest.decrypt(token)
                current += 1
                continue
            except InvalidToken:
                pass
            self._write_private(path, self._all.rotate(token))
            rotated += 1
        return rotated, current

    def stale(self) -> int:
        """How many files are still under an older key."""
        count = 0
        for path in self.files():
            try:
                self._newest.decrypt(path.read_bytes())
            except InvalidToken:
                count += 1
        return count
