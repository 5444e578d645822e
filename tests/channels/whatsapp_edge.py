"""The network edges of the WhatsApp channel, faked at the boundary only.

Inbound: form posts as Twilio sends them, signed with twilio's real `RequestValidator`, to the real app
through `httpx.ASGITransport`. Outbound REST: a fake of twilio's own `AsyncHttpClient` interface (the
holodeck idea from twilio's test suite), so the real `twilio.rest.Client` builds every request.
"""

from __future__ import annotations

import json
import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from twilio.http import AsyncHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.request_validator import RequestValidator

from bot.channels.whatsapp.webhook import PATH
from bot.service import ReportService

PUBLIC = "https://reports.example.org"
TOKEN = "0f3b" * 8  # the account's auth token (32 hex characters, as Twilio's are)
ACCOUNT = "AC" + "5e" * 16
BOT_NUMBER = "whatsapp:+447700900000"
PERSON = "whatsapp:+447700900123"
PROFILE_NAME = "Amina Testperson"
TEMPLATE = "HX" + "7c" * 16

WHATSAPP_TOML = f"""
[limits]
messages_per_second = 1000  # the tests type far faster than a person can

[whatsapp]
account_sid = "{ACCOUNT}"
auth_token = "{TOKEN}"
from = "{BOT_NUMBER}"
public_url = "{PUBLIC}"
"""


def form(body: str = "", sid: str = "SM00", *, sender: str = PERSON, **extra: str) -> dict[str, str]:
    """The fields Twilio posts for one inbound WhatsApp message."""
    fields = {
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ProfileName": PROFILE_NAME,
        "MessageType": "text",
        "SmsSid": sid,
        "WaId": sender.removeprefix("whatsapp:+"),
        "SmsStatus": "received",
        "Body": body,
        "To": BOT_NUMBER,
        "NumSegments": "1",
        "ReferralNumMedia": "0",
        "MessageSid": sid,
        "AccountSid": ACCOUNT,
        "From": sender,
        "ApiVersion": "2010-04-01",
    }
    fields.update(extra)
    return fields


def sign(fields: dict[str, str], url: str = PUBLIC + PATH, token: str = TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, fields)


def messages(response: httpx.Response) -> list[str]:
    """The texts of a TwiML response's <Message> verbs."""
    assert response.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(response.text)
    assert root.tag == "Response"
    return [m.text or "" for m in root.iter("Message")]


@dataclass
class WhatsAppPerson:
    """Someone on WhatsApp talking to the app; each `send` is one signed webhook post."""

    client: httpx.AsyncClient
    service: ReportService
    sender: str = PERSON
    replies: list[str] = field(default_factory=list)
    count: int = 0

    async def post(self, fields: dict[str, str], **kw: Any) -> httpx.Response:
        signature = kw.pop("signature", None) or sign(fields)
        return await self.client.post(
            PATH,
            content=urlencode(fields),
            headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
            **kw,
        )

    def next_sid(self) -> str:
        self.count += 1
        return f"SM{self.count:032x}"

    async def send(self, body: str = "", **extra: str) -> str:
        response = await self.post(form(body, self.next_sid(), sender=self.sender, **extra))
        assert response.status_code == 200, response.text
        self.replies = messages(response)
        assert all(len(r.encode("utf-16-le")) // 2 <= 1600 for r in self.replies)
        return "\n\n".join(self.replies)

    async def choose(self, label: str) -> str:
        """Type the number shown next to `label` in the last reply."""
        return await self.send(number(self.last, label))

    async def share(self, latitude: float, longitude: float, label: str = "", address: str = "") -> str:
        extra = {"Latitude": str(latitude), "Longitude": str(longitude), "MessageType": "location"}
        if label:
            extra["Label"] = label
        if address:
            extra["Address"] = address
        return await self.send("", **extra)

    async def photo(self, url: str, caption: str = "") -> str:
        return await self.send(
            caption, NumMedia="1", MediaUrl0=url, MediaContentType0="image/jpeg", MessageType="image"
        )

    @property
    def last(self) -> str:
        return "\n\n".join(self.replies)


def number(text: str, label: str) -> str:
    """The number of the option `label` in a reply's `N. Label` lines."""
    found = re.search(rf"^(\d+)\. {re.escape(label)}( \u2713)?$", text, re.MULTILINE)
    assert found, f"no option {label!r} in:\n{text}"
    return found.group(1)


class FakeTwilio(AsyncHttpClient):
    """Twilio's REST API as seen through twilio's own async HTTP client interface."""

    def __init__(self) -> None:
        super().__init__(logging.getLogger("tests.fake_twilio"), is_async=True)
        self.requests: list[dict[str, Any]] = []
        self.fail_with: tuple[int, int] | None = None  # (HTTP status, Twilio error code)

    async def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  (twilio's interface)
        allow_redirects: bool = False,
    ) -> TwilioResponse:
        self.requests.append({"method": method, "uri": uri, "data": dict(data or {}), "auth": auth})
        if self.fail_with is not None:
            status, code = self.fail_with
            body = {"code": code, "message": "refused", "more_info": "", "status": status}
            return TwilioResponse(status, json.dumps(body))
        sid = f"SM{len(self.requests):032x}"
        created = {
            "sid": sid,
            "account_sid": ACCOUNT,
            "status": "queued",
            "to": (data or {}).get("To"),
            "from": (data or {}).get("From"),
            "body": (data or {}).get("Body"),
            "num_segments": "1",
            "direction": "outbound-api",
        }
        return TwilioResponse(201, json.dumps(created))

    @property
    def sent(self) -> list[dict[str, Any]]:
        return [r["data"] for r in self.requests]


class FakeTwilioMedia:
    """Twilio's media URLs: answered only with the account's credentials (HTTP Basic), then a redirect to
    the file store, which must not see those credentials, as Twilio does."""

    STORE = "https://mms.twiliocdn.test/"

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}  # media URL -> (bytes, content type)
        self.requests: list[tuple[str, str | None]] = []  # (url, Authorization header)
        self.deleted: list[str] = []  # media URLs deleted (DELETE .../Media/ME....json)
        self.fail_deletes = 0  # the next this many DELETEs answer 503
        self.down = False

    def _delete(self, url: str) -> httpx.Response:
        if self.fail_deletes:
            self.fail_deletes -= 1
            return httpx.Response(503)
        if self.files.pop(url, None) is None:
            return httpx.Response(
                404, json={"code": 20404, "message": "The requested resource was not found"}
            )
        self.deleted.append(url)
        return httpx.Response(204)

    def add(self, message_sid: str, data: bytes, content_type: str = "image/jpeg") -> str:
        url = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages/{message_sid}/Media/ME{len(self.files):030x}"
        self.files[url] = (data, content_type)
        return url

    def handle(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        given = request.headers.get("authorization")
        self.requests.append((url, given))
        if self.down:
            return httpx.Response(503)
        if url.startswith(self.STORE):
            assert given is None, "the credentials must not follow the redirect"
            data, kind = self.files[url.replace(self.STORE, "https://api.twilio.com/", 1)]
            return httpx.Response(200, content=data, headers={"content-type": kind})
        if given != httpx.BasicAuth(ACCOUNT, TOKEN)._auth_header:
            return httpx.Response(401)
        if request.method == "DELETE":
            return self._delete(url.removesuffix(".json"))
        if url not in self.files:
            return httpx.Response(404)
        return httpx.Response(
            307, headers={"location": url.replace("https://api.twilio.com/", self.STORE, 1)}
        )
