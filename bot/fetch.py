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
from storage.fetches import DISCARD, Claimed, claim_fetch, fetched, later, stored_then_discard

log = logging.getLogger("reportbot.evidence")

LEASE = timedelta(minutes=5)  # one download, well within this
MAX_ATTEMPTS = 10
DISCARD_ATTEMPTS = 5  # tries to delete the platform's copy before it is left to the platform's retention
DISCARD_WAIT = 2.0  # seconds before the second try to delete it; then 8, 32, 128 (a Twilio outage)
RETRY_CAP = 300.0  # seconds: a platform away is tried again after 0.5, 1, 2 ... up to this
PER_ROUND = 20  # files downloaded per delivery round at most (the next round goes on)


@runtime_checkable
class DiscardsMedia(Protocol):
    """A sender whose platform keeps its own copy of a file the person sent (Twilio's media): deleted
    there once the bytes are stored here, so that the platform holds the file no longer than needed."""

    async def discard(self, source: str) -> None:
        """Delete the platform's copy; RetryLater when the platform is away, GiveUp when it refuses."""
        ...


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
        self.discards = isinstance(sender, DiscardsMedia)

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
        if claimed.ref.startswith(DISCARD):
            await self._discard(claimed)
            return False
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
        if not await self.outbox.write(partial(self._stored, claimed)):
            # The draft ended without a report while this downloaded (stop, delete, exit): not kept.
            await asyncio.to_thread(self.evidence.forget, [claimed.ref])
            log.info("evidence of an ended draft not kept channel=%s", self.channel)
            return False
        log.info("evidence stored channel=%s bytes=%d", self.channel, len(data))
        return True

    async def _give_up(self, claimed: Claimed, reason: str) -> bool:
        await self.outbox.write(partial(self._stored, claimed))  # not kept: the platform's copy goes too
        log.warning("evidence not downloaded channel=%s reason=%s", self.channel, reason[:40])
        return False

    def _stored(self, claimed: Claimed, conn: Connection) -> bool:
        """The download is over: its row goes (and the platform's copy is left to delete, where it
        keeps one). False when the row was gone already (its draft ended)."""
        if self.discards:
            return stored_then_discard(conn, self.cipher, claimed, self.channel)
        return fetched(conn, claimed.ref)

    async def _discard(self, claimed: Claimed) -> None:
        """Delete the platform's copy of a stored file; tried DISCARD_ATTEMPTS times, never holding up
        anything else (a failure is logged by reason, and tried again on a later round)."""
        assert isinstance(self.sender, DiscardsMedia)
        try:
            await self.sender.discard(claimed.source)
        except (RetryLater, OSError, TimeoutError) as exc:
            if claimed.attempts < DISCARD_ATTEMPTS:
                log.info("media not deleted yet channel=%s error=%s", self.channel, _reason(exc))
                until = datetime.now(UTC) + timedelta(
                    seconds=min(RETRY_CAP, DISCARD_WAIT * 4 ** (claimed.attempts - 1))
                )
                await self.outbox.write(partial(_later, claimed.ref, until))
                return
            log.warning("media not deleted on the platform channel=%s reason=attempts", self.channel)
        except GiveUp as exc:
            log.warning("media not deleted on the platform channel=%s reason=%s", self.channel, _reason(exc))
        await self.outbox.write(partial(_done, claimed.ref))


def _claim(cipher: Cipher, channel: str, now: datetime, conn: Connection) -> Claimed | None:
    return claim_fetch(conn, cipher, channel, now=now, lease=LEASE)


def _later(ref: str, until: datetime, conn: Connection) -> None:
    later(conn, ref, until=until)


def _done(ref: str, conn: Connection) -> bool:
    return fetched(conn, ref)


def _reason(exc: Exception) -> str:
    """A failure's code for the logs (RetryLater/GiveUp carry one; never a URL or an id)."""
    code = getattr(exc, "code", None)
    return str(code)[:40] if isinstance(code, str) else type(exc).__name__
