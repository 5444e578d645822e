"""Files people send on a messaging app, as the step sees them: before the flow runs, each platform file
id or media URL is swapped for a new reference of the evidence store, so that the draft and the report
only ever hold that; the flow's answers then say which files were kept, and those are left to the
delivery loop to download (storage.fetches). The webhook never downloads anything."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any

from bot.app.envelope import Envelope
from flows.types import Media, StepResult
from storage.evidence import is_stored, refs_in
from storage.interface import Fetch

PREFIX = "evidence:"

# What the platforms call a file when they do not give its type: Telegram sends every photo as JPEG.
TYPE_OF = {"photo": "image/jpeg"}


def evidence_refs(env: Envelope) -> tuple[Envelope, list[Fetch]]:
    """The envelope with evidence store references in place of platform ones, and where each comes from."""
    if not env.inbound.media:
        return env, []
    fetches: list[Fetch] = []
    media: list[Media] = []
    for m in env.inbound.media:
        if is_stored(m.ref):  # the web chat stored it itself
            media.append(m)
            continue
        kind = TYPE_OF.get(m.content_type or "", m.content_type)
        ref = PREFIX + secrets.token_hex(16)
        fetches.append(Fetch(ref=ref, source=m.ref, content_type=kind))
        media.append(Media(ref=ref, content_type=kind))
    return replace(env, inbound=replace(env.inbound, media=tuple(media))), fetches


def kept_fetches(fetches: Sequence[Fetch], result: StepResult) -> list[Fetch]:
    """The downloads the answers need: files the flow kept in the draft or in the report it submitted."""
    if not fetches:
        return []
    kept: set[str] = set()
    if result.submit is not None:
        kept.update(m.ref for m in result.submit.evidence)
    for item in result.draft.answers.get("evidence") or []:
        if isinstance(item, dict):
            kept.add(str(item.get("ref")))
    return [f for f in fetches if f.ref in kept]


def dropped_files(saved: dict[str, Any] | None, result: StepResult) -> list[str]:
    """Evidence the saved draft kept that neither the new draft nor a submitted report keeps (stop,
    delete, exit, start again): its files go, and downloads not made yet are never made."""
    if saved is None:
        return []
    before = refs_in(saved)
    if not before:
        return []
    after = refs_in(result.draft.to_json())
    if result.submit is not None:
        after |= refs_in(asdict(result.submit))
    return sorted(before - after)
