"""Answers to button presses (answerCallbackQuery), kept apart from the outbox's replies.

On the webhook the answer rides in the HTTP response itself (`response_body`: the Bot API runs one method
given as the webhook's response), so a press costs no request at all. `reportbot poll` has no response
to carry it: there `CallbackAnswers` sends them, one at a time from a bounded queue, so that they never
compete with replies for connections and never grow without bound; when the queue is full the oldest
answer is dropped (a spinner that has waited longest is the one Telegram has already given up on) and
the drops are counted in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii

from telegram import Bot
from telegram.error import TelegramError

log = logging.getLogger("reportbot.telegram")

QUEUE_LIMIT = 256  # answers waiting in poll mode; beyond this the oldest is dropped


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer to one callback query: it stops the button's spinner, with a short note if any."""

    query_id: str
    text: str | None = None


_ANSWER = b'{"method":"answerCallbackQuery","callback_query_id":'


def response_body(answer: Answer) -> bytes:
    """The webhook response that makes Telegram answer the query (content type application/json)."""
    body = _ANSWER + encode_basestring_ascii(answer.query_id).encode()
    if answer.text:
        body += b',"text":' + encode_basestring_ascii(answer.text).encode()
    return body + b"}"


class CallbackAnswers:
    """Poll mode's answers: a bounded queue and one sender task, started with the first answer."""

    def __init__(self, bot: Bot, *, limit: int = QUEUE_LIMIT) -> None:
        self.bot = bot
        self.limit = limit
        self.dropped = 0  # answers dropped because the queue was full, since start
        self._queue: deque[Answer] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._done = asyncio.Event()  # set when nothing is queued or being sent
        self._done.set()

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, answer: Answer) -> None:
        if len(self._queue) >= self.limit:
            self._queue.popleft()
            self.dropped += 1
            log.warning("callback answer dropped: queue full limit=%d dropped=%d", self.limit, self.dropped)
        self._queue.append(answer)
        self._done.clear()
        self._wake.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                await self._send(self._queue.popleft())
            self._done.set()

    async def _send(self, answer: Answer) -> None:
        try:
            await self.bot.answer_callback_query(answer.query_id, text=answer.text)
        except TelegramError as exc:
            log.info("callback answer failed error=%s", type(exc).__name__)
        except Exception as exc:  # never stop the sender: the answers behind this one still matter
            log.warning("callback answer failed error=%s", type(exc).__name__)

    async def sent(self) -> None:
        """Until every queued answer has been sent (or has failed)."""
        await self._done.wait()

    async def stop(self, within: float = 5.0) -> None:
        """Send what is queued (for at most `within` seconds), then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._done.wait(), within)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        self._queue.clear()  # not sent within the time given: dropped, as a full queue drops them
        self._done.set()
