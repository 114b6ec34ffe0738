"""Switchboard for Python: the Rust sans-IO client machine, driven by asyncio over ``websockets``.

::

    import switchboard

    async with switchboard.Client("ws://127.0.0.1:8000/api/ws", token=None) as client:
        sub = await client.subscribe("projects/p1")
        offset = await client.publish("projects/p1", {"event_type": "log", "data": {}})
        async for ev in sub:
            print(ev.channel, ev.offset, ev.event)

:class:`SyncClient` is the blocking facade. Every exception is a :class:`SwitchboardError`.
"""

from ._native import PROTOCOL_VERSION
from .client import Client, Handler
from .errors import (
    ClientClosed,
    ConnectionRejected,
    Disconnected,
    DuplicateMessageIdError,
    ForbiddenError,
    HandlerError,
    InternalServerError,
    InvalidChannelError,
    InvalidJsonError,
    InvalidMessageTypeError,
    NoHandlerError,
    NotSubscribedError,
    QueueFull,
    RateLimitedError,
    RequestTimeout,
    ServerError,
    ServerRequestTimeoutError,
    SessionLimitError,
    SessionNotFoundError,
    StorageUnavailableError,
    ChannelLimitError,
    SubscriptionLost,
    SwitchboardError,
    TooManySubscriptionsError,
    UnsupportedFrameError,
    ValidationError,
)
from .subscription import Subscription
from .sync import SyncClient, SyncSubscription
from .types import Caller, Event, Resync, State

__all__ = [
    "PROTOCOL_VERSION",
    "Caller",
    "Client",
    "ClientClosed",
    "ConnectionRejected",
    "Disconnected",
    "DuplicateMessageIdError",
    "Event",
    "ForbiddenError",
    "Handler",
    "HandlerError",
    "InternalServerError",
    "InvalidChannelError",
    "InvalidJsonError",
    "InvalidMessageTypeError",
    "NoHandlerError",
    "NotSubscribedError",
    "QueueFull",
    "RateLimitedError",
    "RequestTimeout",
    "Resync",
    "ServerError",
    "ServerRequestTimeoutError",
    "SessionLimitError",
    "SessionNotFoundError",
    "State",
    "StorageUnavailableError",
    "ChannelLimitError",
    "Subscription",
    "SubscriptionLost",
    "SwitchboardError",
    "SyncClient",
    "SyncSubscription",
    "TooManySubscriptionsError",
    "UnsupportedFrameError",
    "ValidationError",
]
