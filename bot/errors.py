"""The exceptions of the `bot` package, in one place. Each str() is one line an operator can act on, and
none ever carries what a person typed, a chat id, a phone number or a token.

    Exception
    +-- ConfigError          a configuration key is missing or wrong (the CLI exits with code 2)
    +-- StaffError           a staff command refused or failed; nothing was changed
    +-- ChannelUnavailable   a channel is not configured here, or cannot reach the person now
    +-- BodyTooLarge         a webhook's body is over `server.max_body_bytes` (answered 413)
    +-- DeliveryError        a channel's sender could not send one outbox message:
        +-- RetryLater           the platform cannot take it now (network, 5xx, 429): try again
        +-- GiveUp               the platform will never take it (blocked, chat gone, bad request)

`storage/` and `flows/` keep their own (storage.schema.SchemaError, ...); they never import these.
"""

from __future__ import annotations


class ConfigError(Exception):
    """A configuration problem; str() is one line that starts with the key at fault."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key


class StaffError(Exception):
    """A staff command refused or failed; str() is one line saying why. Nothing was changed."""


class ChannelUnavailable(Exception):
    """The channel is not configured in this deployment, or cannot reach the person now."""


class BodyTooLarge(Exception):
    """The request body is over the configured limit."""


class DeliveryError(Exception):
    """A sender's verdict on one outbox message; `code` is an enumerated reason, safe to log and audit."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class RetryLater(DeliveryError):
    """The platform could not take the message now (network, 5xx, 429); `after` is its own wait, if any."""

    def __init__(self, code: str, after: float | None = None) -> None:
        super().__init__(code)
        self.after = after


class GiveUp(DeliveryError):
    """The platform will never accept this message (blocked by the user, chat gone, bad request)."""
