"""The zip export: `reports.jsonl` (as the jsonl export) and, under `evidence/`, each file people sent with
its original bytes. Each evidence item in the jsonl names its file, size and SHA-256, so anyone given the
zip can check a file is the one the reporter sent (`sha256sum evidence/...`)."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from typing import Any, BinaryIO

from bot.staff.commands.export import answers
from bot.staff.commands.export.writers import ExportInfo, opened_evidence

# A file name's ending for each type a person can send; others get `.bin`.
SUFFIX = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "application/pdf": ".pdf",
    "video/mp4": ".mp4",
    "audio/ogg": ".ogg",
    "audio/mpeg": ".mp3",
    "audio/amr": ".amr",
}


class ZipWriter:
    """Evidence files are written as each report comes; the jsonl, kept in memory, at the end."""

    def __init__(self, out: BinaryIO, info: ExportInfo) -> None:
        self.zip = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED)
        self.info = info
        self.lines: list[str] = []

    def begin(self) -> None:
        return None

    def write(self, record: Mapping[str, Any]) -> None:
        items: list[dict[str, Any]] = []
        for number, (entry, found) in enumerate(opened_evidence(self.info.evidence, record), start=1):
            if found is not None:
                kind = str(entry.get("content_type") or "")
                name = f"evidence/{record.get('reference')}-{number}{SUFFIX.get(kind, '.bin')}"
                self.zip.writestr(name, found.data)
                entry.update(file=name, size=found.size, sha256=found.sha256)
            items.append(entry)
        flat = answers.flat({**record, "evidence": items})
        self.lines.append(json.dumps(flat, ensure_ascii=False, separators=(",", ":")) + "\n")

    def end(self, count: int) -> None:
        self.zip.writestr("reports.jsonl", "".join(self.lines))
        self.zip.close()
