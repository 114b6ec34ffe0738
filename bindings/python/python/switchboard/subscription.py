""":class:`Subscription`: the events of one subscribed channel, as an async iterator."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Union

from .types import Event, Resync

if TYPE_CHECKING:
    from .client import Client

_END = object()


class Subscription:
    """The events of one channel, in order: :class:`Event` items, and a :class:`Resync` item where events were lost
    (never a silent gap). Created by :meth:`Client.subscribe`; the client keeps the channel subscribed across
    reconnects, resuming after the last offset delivered.

    Iterating ends when the subscription or the client is closed; it raises :class:`SubscriptionLost` when the
    server refused to re-establish it, and the client's error when it gave up reconnecting.
    """

    def __init__(self, client: "Client", channel: str) -> None:
        self._client = client
        self._queue: "asyncio.Queue[object]" = asyncio.Queue()
        self._ended = False
        self.channel = channel

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> Union[Event, Resync]:
        item = await self._queue.get()
        if item is _END or isinstance(item, BaseException):
            # Every later call ends the same way.
            self._queue.put_nowait(item)
            if item is _END:
                raise StopAsyncIteration
            assert isinstance(item, BaseException)
            raise item
        assert isinstance(item, (Event, Resync))
        return item

    async def get(self) -> Union[Event, Resync]:
        """The next item; raises ``StopAsyncIteration`` once the subscription ended."""
        return await self.__anext__()

    async def unsubscribe(self) -> None:
        """Stops this subscription: iteration ends after the items already received. The channel is unsubscribed
        on the server when no other subscription of this client wants it."""
        await self._client._unsubscribe(self)

    # The client's side.

    def _push(self, item: object) -> None:
        if not self._ended:
            self._queue.put_nowait(item)

    def _end(self, error: "BaseException | None" = None) -> None:
        if not self._ended:
            self._queue.put_nowait(_END if error is None else error)
            self._ended = True
