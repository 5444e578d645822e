"""Keeping the promises made to reporters: retention, erasure, key rotation, and the audit trail.

Every function here opens its own transactions, counts what it did, and records an audit event: who,
when, what, which references, how many; never content. On SQLite, deleted content is overwritten
(`secure_delete=ON`, see storage.db) and the write-ahead log is checkpointed and truncated afterwards,
so old pages do not linger in the -wal file either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col

from storage import dialect, kept, series
from storage.crypto import Cipher, DecryptError
from storage.db import Database
from storage.evidence import EvidenceStore, is_stored, refs_in
from storage.models import (
    ALL_TABLES,
    ENCRYPTED_COLUMNS,
    AuditEvent,
    Conversation,
    EvidenceFetch,
    InboundReceipt,
    LookupFailure,
    OutboxMessage,
    Report,
    TranscriptEntry,
    utcnow,
)
from storage.store import Store

RECEIPT_KEEP = timedelta(hours=48)  # a platform may redeliver for about a day; keep ids at least that long
SENT_KEEP = timedelta(hours=48)  # sent messages kept as long as Telegram lets a bot delete them
BATCH = 500


@dataclass
class PurgeCounts:
    """What `purge` removed, by kind. Counts only."""

    drafts: int = 0
    reports: int = 0
    transcript_entries: int = 0
    outbox_messages: int = 0
    receipts: int = 0
    message_ids: int = 0  # platform ids of people's messages, kept for quick exit
    evidence_files: int = 0  # files in the evidence store of the reports purged
    references: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        """The counts by kind, in the order of the fields (the references are not a count)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "references"}


@dataclass
class EraseCounts:
    """What `erase` removed for one report."""

    reference: str
    transcript_entries: int = 0
    outbox_messages: int = 0
    evidence_files: int = 0


def _rows(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


async def _evidence_refs(s: AsyncSession, cipher: Cipher, ids: Sequence[int]) -> list[str]:
    """The evidence-store references the reports keep (their files go with them)."""
    refs: list[str] = []
    for sealed_enc in (
        await s.execute(select(col(Report.sealed_enc)).where(col(Report.id).in_(ids)))
    ).scalars():
        try:
            sealed = cipher.decrypt_json(sealed_enc)
        except DecryptError:
            continue
        items = sealed.get("evidence") if isinstance(sealed, dict) else None
        refs.extend(
            str(i.get("ref")) for i in items or [] if isinstance(i, dict) and is_stored(str(i.get("ref")))
        )
    return refs


async def _forget_downloads(s: AsyncSession, refs: Sequence[str]) -> None:
    """Downloads not done yet of files that go with their report: never made, and their source forgotten."""
    if refs:
        await s.execute(delete(EvidenceFetch).where(col(EvidenceFetch.ref).in_(list(refs))))


async def _delete_reports(s: AsyncSession, ids: Sequence[int]) -> tuple[int, int]:
    """Delete reports with their transcripts and outbox rows; (transcript entries, outbox rows)."""
    t = await s.execute(delete(TranscriptEntry).where(col(TranscriptEntry.report_id).in_(ids)))
    o = await s.execute(delete(OutboxMessage).where(col(OutboxMessage.report_id).in_(ids)))
    await s.execute(delete(Report).where(col(Report.id).in_(ids)))
    return _rows(t), _rows(o)


async def _delete_drafts(s: AsyncSession, ids: Sequence[int]) -> tuple[int, int]:
    """Delete conversations with their transcripts and every message they queued or sent."""
    t = await s.execute(delete(TranscriptEntry).where(col(TranscriptEntry.conversation_id).in_(ids)))
    o = await s.execute(delete(OutboxMessage).where(col(OutboxMessage.conversation_id).in_(ids)))
    await s.execute(delete(Conversation).where(col(Conversation.id).in_(ids)))
    return _rows(t), _rows(o)


async def purge(
    db: Database,
    store: Store,
    *,
    draft_retention_days: int,
    report_retention_days: int,
    actor: str,
    now: datetime | None = None,
    evidence: EvidenceStore | None = None,
) -> PurgeCounts:
    """Delete what retention says must go: idle drafts, old reports (with their evidence files), old
    delivery ids and sent messages."""
    now = now or utcnow()
    counts = PurgeCounts()
    await _purge_drafts(
        db, store, counts, before=now - timedelta(days=draft_retention_days), evidence=evidence
    )
    await _purge_reports(
        db, store, counts, before=now - timedelta(days=report_retention_days), evidence=evidence
    )
    if evidence is not None:
        counts.evidence_files += await sweep_evidence(db, store, evidence, now=now)
    async with db.transaction() as s:
        await _purge_the_rest(s, store, counts, now)
        await _purge_kept_ids(
            s, store, counts, now, markers_before=now - timedelta(days=draft_retention_days)
        )
        await store.audit(
            s,
            actor=actor,
            action="purge",
            count=counts.drafts + counts.reports,
            detail=" ".join(f"{k}={v}" for k, v in counts.as_dict().items()),
            references=counts.references,
        )
    await checkpoint(db)
    return counts


async def _purge_drafts(
    db: Database, store: Store, counts: PurgeCounts, *, before: datetime, evidence: EvidenceStore | None
) -> None:
    """Idle drafts, in batches, so that a large purge never holds the database for long; the evidence
    files they kept once each batch is committed."""
    while True:
        async with db.transaction() as s:
            idle = select(col(Conversation.id)).where(col(Conversation.updated_at) < before).limit(BATCH)
            # A conversation a step holds now is passed over (PostgreSQL): it is not idle.
            locked = dialect.locked(idle, s.get_bind().dialect.name, skip_locked=True)
            ids = [int(i or 0) for i in (await s.execute(locked)).scalars()]
            if not ids:
                return
            drafts = await s.execute(select(col(Conversation.draft_enc)).where(col(Conversation.id).in_(ids)))
            files = sorted(set().union(*(_draft_refs(store.cipher, token) for token in drafts.scalars())))
            await _forget_downloads(s, files)
            t, o = await _delete_drafts(s, ids)
            counts.drafts += len(ids)
            counts.transcript_entries += t
            counts.outbox_messages += o
        if evidence is not None:
            counts.evidence_files += evidence.forget(files)


def _draft_refs(cipher: Cipher, token: str | None) -> set[str]:
    """The evidence-store references a stored draft keeps."""
    if token is None:
        return set()
    try:
        return refs_in(cipher.decrypt_json(token))
    except DecryptError:
        return set()


ORPHAN_AGE = timedelta(hours=1)  # a file younger than this may belong to a step not yet committed


async def sweep_evidence(db: Database, store: Store, evidence: EvidenceStore, *, now: datetime) -> int:
    """Delete evidence files that no draft, report or waiting download names (a draft that ended while
    its file was written, a crash between the two), once older than ORPHAN_AGE. Returns how many."""
    named: set[str] = set()
    async with db.transaction() as s:
        for (token,) in (await s.execute(select(col(Conversation.draft_enc)))).all():
            named |= _draft_refs(store.cipher, token)
        for (token,) in (await s.execute(select(col(Report.sealed_enc)))).all():
            named |= _draft_refs(store.cipher, token)
        named.update(str(r) for r in (await s.execute(select(col(EvidenceFetch.ref)))).scalars())
    cutoff = (now - ORPHAN_AGE).timestamp()
    orphans = [ref for ref, written in evidence.stored() if ref not in named and written < cutoff]
    return evidence.forget(orphans)


async def _purge_reports(
    db: Database, store: Store, counts: PurgeCounts, *, before: datetime, evidence: EvidenceStore | None
) -> None:
    """Reports past retention, in batches; their evidence files once each batch is committed."""
    while True:
        async with db.transaction() as s:
            found = (
                await s.execute(
                    select(col(Report.id), col(Report.reference))
                    .where(col(Report.submitted_at) < before)
                    .limit(BATCH)
                )
            ).all()
            if not found:
                return
            ids = [int(r[0] or 0) for r in found]
            files = await _evidence_refs(s, store.cipher, ids) if evidence is not None else []
            await _forget_downloads(s, files)
            t, o = await _delete_reports(s, ids)
            counts.reports += len(found)
            counts.transcript_entries += t
            counts.outbox_messages += o
            counts.references.extend(str(r[1]) for r in found)
        if evidence is not None:
            counts.evidence_files += evidence.forget(files)


async def _purge_kept_ids(
    s: AsyncSession, store: Store, counts: PurgeCounts, now: datetime, *, markers_before: datetime
) -> None:
    """Message ids kept for quick exit that are too old to delete (each chat that had some keeps a marker
    that older messages exist), and markers older than the draft retention (storage.kept)."""
    counts.message_ids = await store.forget_messages(s, None, before=now - kept.USELESS_AFTER)
    await s.run_sync(lambda sync: kept.expire_markers(sync.connection(), before=markers_before))


async def _purge_the_rest(s: AsyncSession, store: Store, counts: PurgeCounts, now: datetime) -> None:
    """Old delivery ids, kept message ids, counters and sent messages."""
    r = await s.execute(delete(InboundReceipt).where(col(InboundReceipt.received_at) < now - RECEIPT_KEEP))
    counts.receipts = _rows(r)
    # Report counters of the abuse limit live an hour (bot/limits.py); a purge clears any left over.
    await store.purge_submission_counts(s, before=now - timedelta(hours=1))
    # Failed status look-ups are counted for an hour, and kept while a lockout lasts (docs/limits.md).
    await s.execute(
        delete(LookupFailure).where(
            col(LookupFailure.window_start) < now - timedelta(hours=1),
            or_(col(LookupFailure.locked_until).is_(None), col(LookupFailure.locked_until) < now),
        )
    )
    cutoff = now - SENT_KEEP
    old = await s.execute(
        delete(OutboxMessage).where(
            or_(col(OutboxMessage.sent_at) < cutoff, col(OutboxMessage.failed_at) < cutoff)
        )
    )
    counts.outbox_messages += _rows(old)


async def erase_report(
    db: Database, store: Store, reference: str, *, actor: str, evidence: EvidenceStore | None = None
) -> EraseCounts | None:
    """Remove one report and everything linked to it (its evidence files too, when the store is given);
    None when there is no such report."""
    async with db.transaction() as s:
        report = await store.report_by_reference(s, reference)
        if report is None or report.id is None:
            return None
        await series.keep_links(s, report, at=datetime.now(UTC))
        files = await _evidence_refs(s, store.cipher, [report.id]) if evidence is not None else []
        await _forget_downloads(s, files)
        t, o = await _delete_reports(s, [report.id])
        counts = EraseCounts(reference=reference, transcript_entries=t, outbox_messages=o)
        await store.audit(s, actor=actor, action="erase", reference=reference, count=1)
    if evidence is not None:  # after the commit: a failed erase leaves the files the report still names
        counts.evidence_files = evidence.forget(files)
    await checkpoint(db)
    return counts


@dataclass
class RotateCounts:
    """What `rotate-keys` did: values re-encrypted now, and values found already under the newest key."""

    rotated: int = 0
    current: int = 0
    batches: int = 0
    complete: bool = True


def _encrypted() -> list[tuple[type[SQLModel], tuple[str, ...]]]:
    return list(ENCRYPTED_COLUMNS.items())


async def _rotate_table(
    db: Database,
    cipher: Cipher,
    table: type[SQLModel],
    columns: tuple[str, ...],
    counts: RotateCounts,
    batch_size: int,
    max_batches: int | None,
) -> None:
    """One table's encrypted columns, a committed batch of rows at a time."""
    id_col = col(table.id)  # type: ignore[attr-defined]
    last = 0
    while True:
        if max_batches is not None and counts.batches >= max_batches:
            counts.complete = False
            return
        async with db.transaction() as s:
            cols = [getattr(table, c) for c in columns]
            rows = (
                await s.execute(select(id_col, *cols).where(id_col > last).order_by(id_col).limit(batch_size))
            ).all()
            if not rows:
                return
            counts.batches += 1
            for row in rows:
                last = int(row[0])
                await _rotate_row(s, cipher, table, columns, row, counts)


async def _rotate_row(
    s: AsyncSession,
    cipher: Cipher,
    table: type[SQLModel],
    columns: tuple[str, ...],
    row: Any,
    counts: RotateCounts,
) -> None:
    """Re-encrypt one row's values not under the newest key, each only if it is still the one read."""
    row_id = int(row[0])
    id_col = col(table.id)  # type: ignore[attr-defined]
    for name, token in zip(columns, row[1:], strict=True):
        if token is None:
            continue
        if cipher.is_current(token):
            counts.current += 1
            continue
        fresh = cipher.rotate(token)
        result = await s.execute(
            update(table).where(id_col == row_id, getattr(table, name) == token).values({name: fresh})
        )
        counts.rotated += _rows(result)


async def rotate_keys(
    db: Database, store: Store, *, actor: str, batch_size: int = BATCH, max_batches: int | None = None
) -> RotateCounts:
    """Re-encrypt every encrypted value under the newest key, one committed batch at a time.

    Safe to stop and run again: values already under the newest key are skipped. Each value is
    replaced only if it is still the one read (compare and set), so a value the service rewrote
    meanwhile (already under the newest key) is never overwritten with an older one. `max_batches`
    stops early (the result says `complete=False`).
    """
    counts = RotateCounts()
    for table, columns in _encrypted():
        await _rotate_table(db, store.cipher, table, columns, counts, batch_size, max_batches)
        if not counts.complete:
            break
    async with db.transaction() as s:
        await store.audit(
            s,
            actor=actor,
            action="rotate-keys",
            count=counts.rotated,
            detail="complete" if counts.complete else "stopped early; run again",
        )
    await checkpoint(db)
    return counts


async def stale_values(db: Database, store: Store) -> int:
    """How many stored values the newest key cannot decrypt (0 after a complete rotation)."""
    stale = 0
    async with db.transaction() as s:
        for table, columns in _encrypted():
            for name in columns:
                column = getattr(table, name)
                for token in (await s.execute(select(column).where(column.is_not(None)))).scalars():
                    if not store.cipher.is_current(token):
                        stale += 1
    return stale


async def keys_open_stored_data(db: Database, store: Store) -> bool:
    """True when the configured keys decrypt what is already stored (or nothing is stored yet).

    One value per encrypted column, the newest: a key removed or replaced by mistake shows here, at
    start, instead of as every message failing later.
    """
    async with db.transaction() as s:
        for table, columns in _encrypted():
            id_col = col(table.id)  # type: ignore[attr-defined]
            for name in columns:
                column = getattr(table, name)
                token = (
                    await s.execute(
                        select(column).where(column.is_not(None)).order_by(id_col.desc()).limit(1)
                    )
                ).scalar()
                if token is None:
                    continue
                try:
                    store.cipher.decrypt(token)
                except DecryptError:
                    return False
    return True


async def audit_events(
    db: Database,
    *,
    since: datetime | None = None,
    action: str | None = None,
    reference: str | None = None,
    limit: int = 1000,
) -> list[AuditEvent]:
    """Audit events, newest first."""
    query = select(AuditEvent).order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc()).limit(limit)
    if since is not None:
        query = query.where(col(AuditEvent.at) >= since)
    if action:
        query = query.where(col(AuditEvent.action) == action)
    async with db.transaction() as s:
        events = list((await s.execute(query)).scalars())
    if reference:
        events = [e for e in events if e.reference == reference or reference in (e.refs or [])]
    return events


async def count_rows(db: Database) -> dict[str, int]:
    """Rows per table (tests and `reportbot db current`)."""
    out: dict[str, int] = {}
    async with db.transaction() as s:
        for table in ALL_TABLES:
            n = (await s.execute(select(func.count()).select_from(table))).scalar()
            out[str(table.__tablename__)] = int(n or 0)
    return out


async def checkpoint(db: Database) -> None:
    """SQLite: copy the write-ahead log into the file and truncate it, so deleted pages leave the -wal."""
    if not db.is_sqlite:
        return
    async with db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        cursor = await driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        await cursor.close()
