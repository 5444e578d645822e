"""Evidence staff can see: a photo sent in the chat is kept only encrypted in the evidence store, shown
inline in the HTML export, written with its original bytes in the zip export, and goes with its report
on erase, purge and key rotation."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import os
import stat
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.cli import main
from bot.config import Config, load_config
from flows.types import Inbound, Media
from storage.db import Database
from storage.evidence import EvidenceStore
from storage.schema import upgrade
from tests.conftest import require_chromium, write_config
from tests.staff import screenshot
from tests.staff.conversation import CONTACT_IN_CHAT, converse

CANARY = b"CANARY-EVIDENCE-5HQ2"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"  # docs/export-evidence.png is a copy


def photo() -> bytes:
    """A real PNG (a red bus stop sign on grey) with the canary in a text chunk."""
    from PIL import Image, ImageDraw
    from PIL.PngImagePlugin import PngInfo

    image = Image.new("RGB", (240, 160), (200, 200, 200))
    draw = ImageDraw.Draw(image)
    draw.rectangle((90, 20, 150, 140), fill=(200, 30, 30))
    meta = PngInfo()
    meta.add_text("Comment", CANARY.decode())
    out = io.BytesIO()
    image.save(out, format="PNG", pnginfo=meta)
    return out.getvalue()


def with_photo(ref: str) -> list[str | Inbound]:
    """The contactable conversation, with a photo sent at the evidence question."""
    lines: list[str | Inbound] = list(CONTACT_IN_CHAT)
    at = lines.index("done", lines.index("Tall man in a red coat"))  # "done" at the evidence question
    lines.insert(at, Inbound(media=(Media(ref=ref, content_type="image/png"),)))
    return lines


def make_report(tmp_path: Path) -> tuple[Path, Config, str, bytes, str]:
    """A config, a report with one photo, the reference, the photo bytes and its evidence reference."""
    path = write_config(tmp_path)
    config = load_config(path, env={})
    data = photo()
    store = EvidenceStore(config.data_path, config.security.encryption_keys)
    ref, _ = store.write(data)

    async def make() -> str:
        db = Database(config.database_url)
        await upgrade(db)
        try:
            done = await converse(
                config, db, with_photo(ref), chat_id="chat-e", at=datetime.now(UTC) - timedelta(days=2)
            )
        finally:
            await db.dispose()
        assert done.reference, done.screen[-1500:]
        assert ref not in done.screen
        return done.reference

    return path, config, asyncio.run(make()), data, ref


def cli(config: Path, *args: str) -> int:
    return main(["--config", str(config), *args])


def every_file(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_the_photo_is_kept_encrypted_owner_only_with_its_hash(tmp_path: Path) -> None:
    _, config, _, data, ref = make_report(tmp_path)
    store = EvidenceStore(config.data_path, config.security.encryption_keys)
    file = store.path(ref)
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert stat.S_IMODE(file.parent.stat().st_mode) == 0o700
    for stored in every_file(tmp_path):  # the database, its journal and the evidence store
        assert CANARY not in stored.read_bytes(), stored
    found = store.open(ref)
    assert found.data == data and found.sha256 == hashlib.sha256(data).hexdigest()


def test_html_export_shows_the_photo_and_lists_type_size_and_hash(tmp_path: Path) -> None:
    path, _, reference, data, _ = make_report(tmp_path)
    out = tmp_path / "out.html"
    assert cli(path, "export", "--format", "html", "--out", str(out), "--reference", reference) == 0
    page = out.read_text()
    assert f'src="data:image/png;base64,{base64.b64encode(data).decode()}"' in page
    assert hashlib.sha256(data).hexdigest() in page and "image/png" in page
    assert "img-src data:" in page  # the page's own policy lets the embedded photo show, nothing else
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_zip_export_holds_the_original_bytes_with_a_matching_hash(tmp_path: Path) -> None:
    path, _, reference, data, _ = make_report(tmp_path)
    out = tmp_path / "out.zip"
    assert cli(path, "export", "--format", "zip", "--out", str(out)) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    with zipfile.ZipFile(out) as bundle:
        [record] = [json.loads(line) for line in bundle.read("reports.jsonl").decode().splitlines()]
        assert record["reference"] == reference
        [item] = record["evidence"]
        original = bundle.read(item["file"])
    assert original == data
    assert item["sha256"] == hashlib.sha256(original).hexdigest() and item["size"] == len(data)
    assert item["file"].endswith(".png")


def test_erase_removes_the_evidence_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, config, reference, _, ref = make_report(tmp_path)
    file = EvidenceStore(config.data_path, config.security.encryption_keys).path(ref)
    assert file.exists()
    assert cli(path, "erase", reference) == 0
    assert "evidence_files=1" in capsys.readouterr().out
    assert not file.exists()


def test_purge_removes_the_evidence_of_reports_past_retention(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, config, _, _, ref = make_report(tmp_path)
    file = EvidenceStore(config.data_path, config.security.encryption_keys).path(ref)
    assert cli(path, "purge") == 0  # the report is two days old: kept
    assert file.exists()
    path.write_text(path.read_text().replace("[service]\n", "[service]\nreport_retention_days = 1\n", 1))
    assert cli(path, "purge") == 0
    assert "evidence_files=1" in capsys.readouterr().out
    assert not file.exists()


def test_rotate_keys_re_encrypts_evidence_under_the_newest_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, config, _, data, ref = make_report(tmp_path)
    new = Fernet.generate_key().decode()
    old = config.security.encryption_keys[0]
    path.write_text(
        path.read_text().replace(f'encryption_keys = ["{old}"]', f'encryption_keys = ["{new}", "{old}"]')
    )
    assert cli(path, "rotate-keys") == 0
    assert "1 evidence files" in capsys.readouterr().out
    assert EvidenceStore(config.data_path, [new]).read(ref) == data  # the old key is no longer needed


@pytest.mark.slow  # a real Chromium
def test_html_export_with_the_photo_in_headless_chromium(tmp_path: Path) -> None:
    """The export as a browser draws it, photo included; the PNG is kept in artifacts/ (and docs/)."""
    require_chromium()
    from PIL import Image

    path, _, reference, _, _ = make_report(tmp_path)
    html = tmp_path / "out.html"
    assert cli(path, "export", "--format", "html", "--out", str(html), "--reference", reference) == 0
    ARTIFACTS.mkdir(exist_ok=True)
    png = ARTIFACTS / "export-evidence.png"
    screenshot.shoot(html, png, height=1400)
    with Image.open(png) as image:
        colours = {colour for _, colour in image.convert("RGB").getcolors(maxcolors=1_000_000) or []}
    assert (200, 30, 30) in colours, "the photo's red sign is drawn on the page"
    assert os.path.getsize(png) > 0


def test_a_file_not_downloaded_is_listed_as_such_and_the_export_goes_on(tmp_path: Path) -> None:
    path, config, reference, _, ref = make_report(tmp_path)
    EvidenceStore(config.data_path, config.security.encryption_keys).path(ref).unlink()  # never came
    out = tmp_path / "out.html"
    assert cli(path, "export", "--format", "html", "--out", str(out), "--reference", reference) == 0
    page = out.read_text()
    assert "image/png: not downloaded: still waiting, or refused" in page and "data:image" not in page
    bundle = tmp_path / "out.zip"
    assert cli(path, "export", "--format", "zip", "--out", str(bundle)) == 0
    with zipfile.ZipFile(bundle) as z:
        [record] = [json.loads(line) for line in z.read("reports.jsonl").decode().splitlines()]
        assert z.namelist() == ["reports.jsonl"]
    assert record["evidence"][0]["problem"].startswith("not downloaded")
