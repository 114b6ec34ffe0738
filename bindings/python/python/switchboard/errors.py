"""Exceptions of the Switchboard client, all subclasses of :class:`SwitchboardError`.

A server refusal is a :class:`ServerError` subclass named after its wire code (``FORBIDDEN`` ->
:class:`ForbiddenError`), carrying the server's ``code``, ``message`` and ``details``. What ended a request on the
client's side (its timeout, a dropped connection, a full offline queue, a closed client) has its own class.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Type


class SwitchboardError(Exception):
    """Base class of every exception this package raises on purpose."""


class ServerError(SwitchboardError):
    """The server answered a request with an ``error``.

    Attributes:
        code: the wire code, e.g. ``"FORBIDDEN"``.
        message: the server's human text.
        details: the server's details, if any (e.g. ``retry_after_ms`` for ``RATE_LIMITED``).
    """

    code: str = "SERVER_ERROR"

    def __init__(self, message: str, *, code: Optional[str] = None, details: Any = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InvalidJsonError(ServerError):
    code = "INVALID_JSON"


class ValidationError(ServerError):
    code = "VALIDATION_ERROR"


class InvalidMessageTypeError(ServerError):
    code = "INVALID_MESSAGE_TYPE"


class UnsupportedFrameError(ServerError):
    code = "UNSUPPORTED_FRAME"


class DuplicateMessageIdError(ServerError):
    code = "DUPLICATE_MESSAGE_ID"


class SessionNotFoundError(ServerError):
    code = "SESSION_NOT_FOUND"


class SessionLimitError(ServerError):
    code = "SESSION_LIMIT"


class InvalidChannelError(ServerError):
    code = "INVALID_CHANNEL"


class ForbiddenError(ServerError):
    code = "FORBIDDEN"


class TooManySubscriptionsError(ServerError):
    code = "TOO_MANY_SUBSCRIPTIONS"


class NotSubscribedError(ServerError):
    code = "NOT_SUBSCRIBED"


class NoHandlerError(ServerError):
    code = "NO_HANDLER"


class RateLimitedError(ServerError):
    code = "RATE_LIMITED"


class InternalServerError(ServerError):
    """``INTERNAL_ERROR``: also what a caller gets when the serving handler failed with a code outside the contract
    (the handler's own code is then in ``details["code"]``)."""

    code = "INTERNAL_ERROR"


class StorageUnavailableError(ServerError):
    code = "STORAGE_UNAVAILABLE"


class ChannelLimitError(ServerError):
    """``CHANNEL_LIMIT``: publishing would start a channel past the server's ``--max-channels``."""

    code = "CHANNEL_LIMIT"


class RequestTimeout(SwitchboardError):
    """No answer in time: the request's own timeout ran out on the client."""


class ServerRequestTimeoutError(ServerError, RequestTimeout):
    """``REQUEST_TIMEOUT``: the server gave up waiting for a routed call's handler."""

    code = "REQUEST_TIMEOUT"


class Disconnected(SwitchboardError):
    """The connection dropped while the request was in flight. It is not re-sent: it may not be idempotent."""


class QueueFull(SwitchboardError):
    """The request was issued while offline and the offline queue was full."""


class ClientClosed(SwitchboardError):
    """The client was closed, or gave up reconnecting, before the request was answered."""


class ConnectionRejected(ClientClosed):
    """The server refused the connection for good (a bad token: HTTP 401/403, a wrong URL: 404, or a policy close
    1008); the client stopped reconnecting."""


class SubscriptionLost(SwitchboardError):
    """The server refused to re-establish a subscription (e.g. the token no longer allows it); the channel is no
    longer subscribed. ``cause`` is the refusal."""

    def __init__(self, channel: str, cause: SwitchboardError) -> None:
        super().__init__(f"subscription to {channel} lost: {cause}")
        self.channel = channel
        self.cause = cause


class HandlerError(SwitchboardError):
    """Raise from a ``serve`` handler to answer the caller with this code and message. A code of the contract (e.g.
    ``"FORBIDDEN"``) reaches the caller as that code; any other reaches it as ``INTERNAL_ERROR`` with
    ``details["code"]``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


_BY_CODE: Dict[str, Type[ServerError]] = {
    cls.code: cls
    for cls in (
        InvalidJsonError,
        ValidationError,
        InvalidMessageTypeError,
        UnsupportedFrameError,
        DuplicateMessageIdError,
        SessionNotFoundError,
        SessionLimitError,
        InvalidChannelError,
        ForbiddenError,
        TooManySubscriptionsError,
        NotSubscribedError,
        NoHandlerError,
        ServerRequestTimeoutError,
        RateLimitedError,
        InternalServerError,
        StorageUnavailableError,
        ChannelLimitError,
    )
}


def server_error(code: str, message: str, details: Any = None) -> ServerError:
    """The exception for a wire error code; unknown codes give a plain :class:`ServerError`."""
    cls = _BY_CODE.get(code, ServerError)
    return cls(message, code=code, details=details)


def from_fail_reason(reason: Mapping[str, Any], closed_because: Optional[SwitchboardError] = None) -> SwitchboardError:
    """The exception for the machine's ``FailReason`` (as the native module reports it)."""
    kind = reason.get("kind")
    if kind == "error":
        return server_error(str(reason.get("code")), str(reason.get("message")), reason.get("details"))
    if kind == "timed_out":
        return RequestTimeout("no answer within the request's timeout")
    if kind == "disconnected":
        return Disconnected("the connection dropped before the answer came")
    if kind == "queue_full":
        return QueueFull("the offline queue is full")
    if kind == "closed":
        return closed_because if closed_because is not None else ClientClosed("the client is closed")
    return SwitchboardError(f"request failed: {reason!r}")
