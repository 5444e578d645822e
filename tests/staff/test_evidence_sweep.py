"""Purge takes the evidence files of the drafts it deletes, and sweeps files nothing names any more.

Files are written by the real evidence store, drafts made through the service's one step, and purge run
through the real CLI; the test then looks at what is on disk."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.config import Config
from bot.service import Envelope, ReportService
from flows.types import Inbound, Media
from storage.db import Database
from storage.evidence import EvidenceStore
from tests.reporting import IN_CHAT, converse, script
from tests.staff.test_maintenance import cli

PHOTO = b"\xff\xd8\xff\xe0 a photo of the graffiti " + bytes(range(256))


async def draft_with_photo(service: ReportService, store: EvidenceStore, chat_id: str, at: datetime) -> str:
    """A draft at the "when" question that keeps one photo (sent early: kept for the evidence step)."""
    await converse(service, script(service.config, IN_CHAT, until="when"), chat_id=chat_id, start=at)
    ref, _ = store.write(PHOTO)
    photo = Inbound(media=(Media(ref=ref, content_type="image/jpeg"),))
    await service.handle(Envelope("console", chat_id, photo, received_at=at + timedelta(minutes=1)))
    return ref


async def test_purge_deletes_the_files_of_idle_drafts_and_old_orphans_only(
    db: Database, config: Config, config_path: Path
) -> None:
    service = ReportService(config, db)
    store = EvidenceStore(config.data_path, config.security.encryption_keys)
    now = datetime.now(UTC)
    stale = now - timedelta(days=config.service.draft_retention_days + 1)
    idle = await draft_with_photo(service, store, "2001", stale)
    live = await draft_with_photo(service, store, "2002", now)
    orphan, _ = store.write(PHOTO)  # a file whose draft ended while it was written: nothing names it
    two_hours_ago = time.time() - 7200
    for old in (orphan, live):  # old enough to sweep, were nothing to name them (`idle` is not)
        os.utime(store.path(old), (two_hours_ago, two_hours_ago))
    young, _ = store.write(PHOTO)  # a step may be about to name it: left for a later sweep
    assert {ref for ref, _ in store.stored()} == {idle, live, orphan, young}

    assert await cli("--config", str(config_path), "purge") == 0

    assert {ref for ref, _ in store.stored()} == {live, young}
    assert store.open(live).data == PHOTO
