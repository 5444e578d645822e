"""Downloading the files people sent on a messaging app into the evidence store, in the delivery loop.

The step gave each file a reference of the evidence store and left the platform's file id or media URL
in storage.fetches. Here, after each outbox round, the channel's sender (`FetchesMedia`) downloads one
file at a time; a file within the size and type limits (`limits.evidence_max_bytes`, `evidence_types`) is
written encrypted under its reference, and the platform's id or URL is deleted either way. A platform
that is away is tried again on a later round; after MAX_ATTEMPTS the file is given up (the export says
it was not downloaded). Logs carry reasons only, never an id, a URL or a reference.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Protocol, runtime_checkable

from sqlalchemy import Connection

from bot.config import Config
from bot.delivery import Outbox
from bot.errors import GiveUp, RetryLater
from storage.crypto import Cipher
from storage.evidence import EvidenceStore, sniff
from storage.fetches import Claimed, claim_fetch, fetched, later

log = logging.getLogger("reportbot.evidence")

LEASE = timedelta(minutes=5)  # one download, well within this
MAX_ATTEMPTS = 10
RETRY_CAP = 300.0  # seconds: a platform away is tried again after 0.5, 1, 2 ... up to this
PER_ROUND = 20  # files downloaded per delivery round at most (the next round goes on)


@runtime_checkable
class FetchesMedia(Protocol):
    """A sender that can download a file a person sent on its platform."""

    channel: str

    async def fetch(self, source: str, max_bytes: int) -> bytes:
        """The file's bytes; GiveUp when it is larger than `max_bytes` or gone, RetryLater when the
        platform is away."""
        ...


class EvidenceFetcher:
    """One channel's downloads, run by its delivery loop after each round."""

    def __init__(self, config: Config, outbox: Outbox, sender: FetchesMedia) -> None:
        self.sender = sender
        self.channel = sender.channel
        self.cipher = outbox.store.cipher
        self.outbox = outbox
        self.evidence = EvidenceStore(config.data_path, config.security.encryption_keys)
        self.max_bytes = config.limits.evidence_max_bytes
        self.types = frozenset(config.limits.evidence_types)

    async def run(self, keep_going: Callable[[], bool] = lambda: True) -> int:
        """Download what is waiting (up to PER_ROUND files); how many were stored."""
        stored = 0
        for _ in range(PER_ROUND):
            if not keep_going():
                break
            now = datetime.now(UTC)
            claimed = await self.outbox.write(partial(_claim, self.cipher, self.channel, now))
            if claimed is None:
                break
            if await self._one(claimed):
                stored += 1
        return stored

    async def _one(self, claimed: Claimed) -> bool:
        try:
            data = await self.sender.fetch(claimed.source, self.max_bytes)
        except GiveUp as exc:
            return await self._give_up(claimed, str(exc) or "refused")
        except (RetryLater, OSError, TimeoutError) as exc:
            if claimed.attempts >= MAX_ATTEMPTS:
                return await self._give_up(claimed, "attempts")
            log.info("evidence download later channel=%s error=%s", self.channel, type(exc).__name__)
            until = datetime.now(UTC) + timedelta(seconds=min(RETRY_CAP, 0.5 * 2 ** (claimed.attempts - 1)))
            await self.outbox.write(partial(_later, claimed.ref, until))
            return False
        if len(data) > self.max_bytes:
            return await self._give_up(claimed, "too-big")
        kind = sniff(data) or claimed.content_type
        if kind not in self.types:
            return await self._give_up(claimed, "type")
        await asyncio.to_thread(self.evidence.write_as, claimed.ref, data)  # encrypt and fsync off the loop
        if not await self.outbox.write(partial(_done, claimed.ref)):
            # The draft ended without a report while this downloaded (stop, delete, exit): not kept.
            await asyncio.to_thread(self.evidence.forget, [claimed.ref])
            log.info("evidence of an ended draft not kept channel=%s", self.channel)
            return False
        log.info("evidence stored channel=%s bytes=%d", self.channel, len(data))
        return True

    async def _give_up(self, claimed: Claimed, reason: str) -> bool:
        await self.outbox.write(partial(_done, claimed.ref))
        log.warning("evidence not downloaded channel=%s reason=%s", self.channel, reason[:40])
        return False


def _claim(cipher: Cipher, channel: str, now: datetime, conn: Connection) -> Claimed | None:
    return claim_fetch(conn, cipher, channel, now=now, lease=LEASE)


def _later(ref: str, until: datetime, conn: Connection) -> None:
    later(conn, ref, until=until)


def _done(ref: str, conn: Connection) -> bool:
    return fetched(conn, ref)
