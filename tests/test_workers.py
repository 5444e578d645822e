"""Several worker processes on one PostgreSQL, interleaving the same chats' messages and repeating some:
no lost answer, no duplicate reply, and every conversation ends as a single worker would leave it."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.config import Config, load_config
from bot.outbox import Outbox
from bot.service import ReportService
from storage.db import Database
from storage.models import Conversation, InboundReceipt, OutboxMessage, Report
from storage.schema import upgrade
from tests.conftest import write_config
from tests.pg_worker import RecordingSender
from tests.reporting import ANONYMOUS, BY_PHONE, IN_CHAT, converse, script

WORKERS = 3
ROOT = Path(__file__).resolve().parent.parent


def plan(config: Config) -> dict[str, list[str]]:
    return {
        "700000001": script(config, ANONYMOUS),
        "700000002": script(config, IN_CHAT),
        "700000003": script(config, BY_PHONE),
        "700000004": script(config, IN_CHAT, until="where"),  # stops half-way: a draft stays
        "700000005": [*script(config, ANONYMOUS, until="when"), "delete", "hi", "Continue"],
    }


def normal(text: str) -> str:
    text = re.sub(r"HC-[A-Z0-9]{4}-[A-Z0-9]{4}", "HC-XXXX-XXXX", text)
    return re.sub(r"\b[a-z0-9]{4}-[a-z0-9]{4}\b", "xxxx-xxxx", text)  # the secret code shown at sending


async def final_state(db: Database, service: ReportService) -> dict[str, object]:
    """What a staff member or the next message would find, per chat, with references blanked."""
    store = service.store
    state: dict[str, object] = {}
    async with db.transaction() as s:
        for conv in (await s.execute(select(Conversation))).scalars():
            draft = store.read_draft(conv) or {}
            draft.pop("last_active", None)
            state[f"draft:{conv.chat_key}"] = (conv.step, json.dumps(draft, sort_keys=True))
        reports = []
        for report in (await s.execute(select(Report))).scalars():
            lines = [
                (line.direction, normal(line.text)) for line in await store.transcript(s, report_id=report.id)
            ]
            reports.append(
                (report.chat_key, report.anonymous, json.dumps(store.sealed(report), sort_keys=True), lines)
            )
        state["reports"] = sorted(reports, key=repr)
        state["receipts"] = len((await s.execute(select(InboundReceipt))).all())
        state["outbox_unsent"] = len(
            [m for m in (await s.execute(select(OutboxMessage))).scalars() if m.sent_at is None]
        )
    return state


def delivered(log: Path) -> dict[str, list[str]]:
    per_chat: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        per_chat[entry["chat"]].append((entry["at"], normal(entry["text"])))
    return {chat: [t for _, t in sorted(items)] for chat, items in per_chat.items()}


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
@pytest.mark.postgres
@pytest.mark.slow
async def test_workers_share_chats_without_losing_or_repeating_anything(
    db: Database, config: Config, config_path: Path, tmp_path: Path
) -> None:
    chats = plan(config)
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(chats))
    log = tmp_path / "delivered.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.pg_worker",
            str(config_path),
            str(plan_file),
            str(w),
            str(WORKERS),
            str(log),
            cwd=ROOT,
            env=env,
            stderr=subprocess.PIPE,
        )
        for w in range(WORKERS)
    ]
    results = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), timeout=120)
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err.decode()[-3000:]

    entries = [json.loads(line) for line in log.read_text().splitlines()]
    ids = [e["id"] for e in entries]
    assert len(ids) == len(set(ids)), "an outbox message was delivered twice"
    assert len({e["w"] for e in entries}) > 1, "only one worker delivered anything"
    service = ReportService(config, db)
    many = await final_state(db, service)

    # The same conversations, one message at a time, through one worker on its own database (SQLite).
    (tmp_path / "single").mkdir()
    single_config = load_config(write_config(tmp_path / "single"), env={})
    single_config = Config(**{**single_config.__dict__, "security": config.security})
    single_db = Database(single_config.database_url)
    await upgrade(single_db)
    single = ReportService(single_config, single_db)
    single_log = tmp_path / "single.jsonl"
    sender = RecordingSender(single_log, 0)
    outbox = Outbox(single_db, single.store, lock=single.sqlite_writer)
    for chat, lines in chats.items():
        await converse(single, lines, chat_id=chat)
    await outbox.drain(sender)
    alone = await final_state(single_db, single)
    await single_db.dispose()

    assert delivered(log) == delivered(single_log)
    assert many == {**alone, "receipts": many["receipts"]}
    assert many["receipts"] == sum(len(lines) for lines in chats.values())
    assert many["outbox_unsent"] == 0
    assert sum(1 for k in many if k.startswith("draft:")) == 2
    assert len(many["reports"]) == 3
