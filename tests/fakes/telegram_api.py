"""A fake Telegram Bot API for tests and benchmarks: the network edge, and nothing of ours.

It answers python-telegram-bot's real HTTP requests through `httpx.MockTransport`, keeps what each
chat would show on the person's phone (messages sent, edited, deleted), records every call, and can be
told to fail (HTTP 500, or 429 with `retry_after`). It also writes the Update JSON Telegram would post,
with message ids that agree with the chat it keeps.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
from telegram import Bot
from telegram.request import HTTPXRequest

TOKEN = "123456:TEST-token-for-the-fake-bot-api"
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "Report Hate", "username": "report_hate_test_bot"}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)
    ok: bool = True


@dataclass
class Shown:
    """A message as the person's phone shows it."""

    message_id: int
    text: str
    from_bot: bool
    buttons: list[tuple[str, str]] = field(default_factory=list)  # (label, callback_data)
    reply_keyboard: list[dict[str, Any]] = field(default_factory=list)


class FakeBotAPI:
    """Answers Bot API methods the bot uses; state per chat; failures on request."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.chats: dict[int, dict[int, Shown]] = {}
        self.updates: list[dict[str, Any]] = []  # served by getUpdates
        self.offsets: list[int | None] = []
        self._failures: dict[str, list[tuple[int, int | None]]] = {}
        self._refused: dict[int, tuple[int, str]] = {}  # chat -> (status, description), for good
        self.down = False  # every call answers 500 while True (an outage)
        self._message_ids = itertools.count(1000)
        self._update_ids = itertools.count(500_000)
        self._query_ids = itertools.count(1)
        self.webhook: dict[str, Any] | None = None
        self.files: dict[str, bytes] = {}  # file_id -> bytes, served by getFile and /file/bot<token>/...
        # chat -> the person's app language (`from.language_code`): Telegram's apps send it, "en" unless set
        # here; None leaves it out (an older client, a bot API that omits it).
        self.language_codes: dict[int, str | None] = {}
        self.downloads: list[str] = []  # file paths downloaded
        # Message ids Telegram will not let the bot delete (sent over 48 hours ago): deleteMessage says
        # "message can't be deleted"; a deleteMessages batch holding one deletes the others and is refused.
        self.undeletable: set[int] = set()

    # -- wiring ----------------------------------------------------------------------------------

    def request(self) -> HTTPXRequest:
        return HTTPXRequest(httpx_kwargs={"transport": httpx.MockTransport(self.handle)})

    def bot(self, token: str = TOKEN, base_url: str = "https://telegram.test/bot") -> Bot:
        return Bot(
            token,
            base_url=base_url,
            base_file_url=base_url.removesuffix("/bot") + "/file/bot",
            request=self.request(),
            get_updates_request=self.request(),
        )

    def fail(self, method: str, status: int = 500, *, retry_after: int | None = None, times: int = 1) -> None:
        """Make the next `times` calls of `method` fail."""
        self._failures.setdefault(method, []).extend([(status, retry_after)] * times)

    def refuse(self, chat_id: int, status: int, description: str) -> None:
        """Refuse every message to this chat from now on, as Telegram does ("chat not found", 403
        "bot was blocked by the user")."""
        self._refused[chat_id] = (status, description)

    # -- what happened ---------------------------------------------------------------------------

    def called(self, method: str, *, ok_only: bool = True) -> list[dict[str, Any]]:
        return [c.params for c in self.calls if c.method == method and (c.ok or not ok_only)]

    def screen(self, chat_id: int) -> list[Shown]:
        """The chat as the person sees it now, oldest first."""
        return [self.chats.get(chat_id, {})[k] for k in sorted(self.chats.get(chat_id, {}))]

    def bot_texts(self, chat_id: int) -> list[str]:
        return [m.text for m in self.screen(chat_id) if m.from_bot]

    # -- the HTTP edge ---------------------------------------------------------------------------

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith(
            "/file/bot"
        ):  # a file download, as api.telegram.org/file/bot<token>/<path>
            return self._download(request.url.path)
        method = request.url.path.rsplit("/", 1)[-1]
        params = _decode(request)
        self.calls.append(Call(method, params))
        if self.down:
            self.calls[-1].ok = False
            return httpx.Response(
                500, json={"ok": False, "error_code": 500, "description": "Internal Server Error"}
            )
        refused = self._refused.get(_int(params.get("chat_id")))
        if refused is not None:
            self.calls[-1].ok = False
            status, description = refused
            return httpx.Response(
                status, json={"ok": False, "error_code": status, "description": description}
            )
        queued = self._failures.get(method)
        if queued:
            status, retry_after = queued.pop(0)
            self.calls[-1].ok = False
            body: dict[str, Any] = {"ok": False, "error_code": status, "description": "Internal Server Error"}
            if retry_after is not None:
                body = {
                    "ok": False,
                    "error_code": 429,
                    "description": f"Too Many Requests: retry after {retry_after}",
                    "parameters": {"retry_after": retry_after},
                }
                status = 429
            return httpx.Response(status, json=body)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return httpx.Response(404, json={"ok": False, "error_code": 404, "description": "Not Found"})
        result = handler(params)
        if asyncio.iscoroutine(result):
            result = await result
        if isinstance(result, httpx.Response):
            self.calls[-1].ok = result.status_code == 200
            return result
        return httpx.Response(200, json={"ok": True, "result": result})

    # -- methods ---------------------------------------------------------------------------------

    def _download(self, path: str) -> httpx.Response:
        name = path.split("/", 3)[-1]  # files/<file_id>
        self.downloads.append(name)
        data = self.files.get(name.removeprefix("files/"))
        if self.down:
            return httpx.Response(500, content=b"")
        return httpx.Response(404, content=b"") if data is None else httpx.Response(200, content=data)

    def _m_getFile(self, p: dict[str, Any]) -> Any:
        file_id = str(p.get("file_id"))
        if file_id not in self.files:
            return _bad_request("Bad Request: invalid file_id")
        data = self.files[file_id]
        return {
            "file_id": file_id,
            "file_unique_id": f"u{len(data)}",
            "file_size": len(data),
            "file_path": f"files/{file_id}",
        }

    def _m_getMe(self, p: dict[str, Any]) -> Any:
        return BOT_USER

    def _m_sendMessage(self, p: dict[str, Any]) -> Any:
        chat_id = int(p["chat_id"])
        mid = next(self._message_ids)
        markup = p.get("reply_markup") or {}
        shown = Shown(mid, p["text"], True, _buttons(markup), markup.get("keyboard", []))
        self.chats.setdefault(chat_id, {})[mid] = shown
        return _message(chat_id, mid, p["text"], BOT_USER)

    def _m_editMessageText(self, p: dict[str, Any]) -> Any:
        chat_id, mid = int(p["chat_id"]), int(p["message_id"])
        shown = self.chats.get(chat_id, {}).get(mid)
        if shown is None:
            return _bad_request("Bad Request: message to edit not found")
        buttons = _buttons(p.get("reply_markup") or {})
        if shown.text == p["text"] and shown.buttons == buttons:
            return _bad_request("Bad Request: message is not modified")
        shown.text, shown.buttons = p["text"], buttons
        return _message(chat_id, mid, p["text"], BOT_USER)

    def _m_deleteMessages(self, p: dict[str, Any]) -> Any:
        chat = self.chats.get(int(p["chat_id"]), {})
        ids = p["message_ids"]
        assert 1 <= len(ids) <= 100, "deleteMessages takes 1-100 ids"
        for mid in ids:
            if int(mid) not in self.undeletable:
                chat.pop(int(mid), None)
        if self.undeletable & {int(mid) for mid in ids}:
            return _bad_request("Bad Request: message can't be deleted")
        return True

    def _m_deleteMessage(self, p: dict[str, Any]) -> Any:
        chat = self.chats.get(int(p["chat_id"]), {})
        mid = int(p["message_id"])
        if mid in self.undeletable:
            return _bad_request("Bad Request: message can't be deleted for everyone")
        if chat.pop(mid, None) is None:
            return _bad_request("Bad Request: message to delete not found")
        return True

    def deleted(self) -> set[int]:
        """Every message id a delete call (of either kind) asked to delete and Telegram did."""
        out: set[int] = set()
        for call in self.calls:
            if call.method == "deleteMessages":
                ids = {int(i) for i in call.params["message_ids"]}
                out |= ids if call.ok else ids - self.undeletable
            elif call.method == "deleteMessage" and call.ok:
                out.add(int(call.params["message_id"]))
        return out

    def _m_answerCallbackQuery(self, p: dict[str, Any]) -> Any:
        return True

    def _m_leaveChat(self, p: dict[str, Any]) -> Any:
        return True

    def _m_setWebhook(self, p: dict[str, Any]) -> Any:
        self.webhook = p
        return True

    def _m_deleteWebhook(self, p: dict[str, Any]) -> Any:
        self.webhook = None
        return True

    async def _m_getUpdates(self, p: dict[str, Any]) -> Any:
        offset = p.get("offset")
        self.offsets.append(offset)
        if offset is not None:
            self.updates = [u for u in self.updates if u["update_id"] >= int(offset)]
        if not self.updates:
            await asyncio.sleep(0.01)
        return self.updates[:100]

    # -- updates Telegram would post -------------------------------------------------------------

    def _user(self, chat_id: int) -> dict[str, Any]:
        user: dict[str, Any] = {"id": chat_id, "is_bot": False, "first_name": "Sam"}
        code = self.language_codes.get(chat_id, "en")
        if code is not None:
            user["language_code"] = code
        return user

    def _incoming(
        self, chat_id: int, text: str, extra: dict[str, Any], chat_type: str = "private"
    ) -> dict[str, Any]:
        mid = next(self._message_ids)
        if chat_type == "private":
            self.chats.setdefault(chat_id, {})[mid] = Shown(mid, text, False)
        message = _message(chat_id, mid, text, self._user(abs(chat_id)), chat_type=chat_type)
        if not text:
            del message["text"]
        message.update(extra)
        return {"update_id": next(self._update_ids), "message": message}

    def text(self, chat_id: int, text: str) -> dict[str, Any]:
        return self._incoming(chat_id, text, {})

    def photo(self, chat_id: int, file_id: str, caption: str = "") -> dict[str, Any]:
        sizes = [
            {"file_id": f"{file_id}-small", "file_unique_id": "s", "width": 90, "height": 90},
            {"file_id": file_id, "file_unique_id": "b", "width": 1280, "height": 960},
        ]
        extra: dict[str, Any] = {"photo": sizes}
        if caption:
            extra["caption"] = caption
        return self._incoming(chat_id, "", extra)

    def voice(self, chat_id: int, file_id: str) -> dict[str, Any]:
        note = {"file_id": file_id, "file_unique_id": "v", "duration": 4, "mime_type": "audio/ogg"}
        return self._incoming(chat_id, "", {"voice": note})

    def location(self, chat_id: int, latitude: float, longitude: float) -> dict[str, Any]:
        return self._incoming(chat_id, "", {"location": {"latitude": latitude, "longitude": longitude}})

    def sticker(self, chat_id: int) -> dict[str, Any]:
        sticker = {
            "file_id": "sticker-1",
            "file_unique_id": "st",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
        }
        return self._incoming(chat_id, "", {"sticker": sticker})

    def group_text(self, chat_id: int, text: str) -> dict[str, Any]:
        return self._incoming(chat_id, text, {}, chat_type="group")

    def press(self, chat_id: int, message_id: int, data: str) -> dict[str, Any]:
        """The person presses a button with `data` on message `message_id`."""
        shown = self.chats.get(chat_id, {}).get(message_id)
        text = shown.text if shown is not None else ""
        message = _message(chat_id, message_id, text, BOT_USER)
        if shown is not None and shown.buttons:  # Telegram sends the message's keyboard with the press
            rows = [[{"text": label, "callback_data": d}] for label, d in shown.buttons]
            message["reply_markup"] = {"inline_keyboard": rows}
        return {
            "update_id": next(self._update_ids),
            "callback_query": {
                "id": str(next(self._query_ids)),
                "from": self._user(chat_id),
                "chat_instance": "ci-1",
                "data": data,
                "message": message,
            },
        }


def _message(
    chat_id: int, mid: int, text: str, sender: dict[str, Any], chat_type: str = "private"
) -> dict[str, Any]:
    chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
    if chat_type == "private":
        chat["first_name"] = "Sam"
    else:
        chat["title"] = "A group"
    return {"message_id": mid, "date": int(time.time()), "chat": chat, "from": sender, "text": text}


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _buttons(markup: dict[str, Any]) -> list[tuple[str, str]]:
    return [(b["text"], b.get("callback_data", "")) for row in markup.get("inline_keyboard", []) for b in row]


def _bad_request(description: str) -> httpx.Response:
    return httpx.Response(400, json={"ok": False, "error_code": 400, "description": description})


STRING_FIELDS = {"text", "callback_query_id", "url", "secret_token", "caption"}


def _decode(request: httpx.Request) -> dict[str, Any]:
    """PTB posts form fields whose values are JSON-encoded (or JSON, depending on the version)."""
    body = request.content.decode()
    if not body:
        return {}
    if request.headers.get("content-type", "").startswith("application/json"):
        return dict(json.loads(body))
    out: dict[str, Any] = {}
    for key, value in parse_qsl(body):
        if key in STRING_FIELDS:
            out[key] = value
            continue
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out
