"""Evidence of a draft that ends without a report does not stay on disk.

Through the real Telegram webhook and delivery loop (the fake Bot API serves the photo): the file the
loop downloaded, and any download still waiting, go when the person stops, deletes or leaves.
"""

from __future__ import annotations

import pytest

from bot.config import Config
from storage.evidence import EvidenceStore
from tests.channels.test_telegram import (  # noqa: F401  (fixtures)
    CANARY,
    CHAT,
    FILE_ID,
    Phone,
    downloaded,
    phone,
    said,
    tg_config,
    to_evidence,
    waiting,
)


def files_on_disk(config: Config) -> list[str]:
    return [ref for ref, _ in EvidenceStore(config.data_path, config.security.encryption_keys).stored()]


@pytest.mark.parametrize("word", ["stop", "delete", "exit"])
async def test_a_photo_sent_then_stop_delete_or_exit_is_gone_from_disk(
    phone: Phone,  # noqa: F811
    tg_config: Config,  # noqa: F811
    word: str,
) -> None:
    phone.api.files[FILE_ID] = CANARY
    await to_evidence(phone)
    assert said(await phone.send(phone.api.photo(CHAT, FILE_ID)), "Send more")
    await downloaded(phone)
    [ref] = files_on_disk(tg_config)
    store = EvidenceStore(tg_config.data_path, tg_config.security.encryption_keys)
    assert store.open(ref).data == CANARY  # kept while the draft is

    await phone.say(word)

    assert files_on_disk(tg_config) == []
    assert not any(p.is_file() for p in tg_config.data_path.rglob("*.bin"))


async def test_a_photo_still_waiting_to_download_at_stop_is_never_downloaded(
    phone: Phone,  # noqa: F811
    tg_config: Config,  # noqa: F811
) -> None:
    phone.api.files[FILE_ID] = CANARY
    await to_evidence(phone)
    phone.api.fail("getFile", times=1000)  # Telegram's file server away: the download waits
    assert said(await phone.send(phone.api.photo(CHAT, FILE_ID)), "Send more")
    assert await waiting(phone) == 1
    assert said(await phone.say("stop"), "Nothing was sent")
    assert await waiting(phone) == 0  # the platform's file id is forgotten with the draft
    phone.api._failures.clear()
    phone.channel.delivery.kick()
    await phone.settle()
    assert files_on_disk(tg_config) == []
    assert phone.api.downloads == []
