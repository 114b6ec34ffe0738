""":class:`SyncClient`: the asyncio :class:`Client` for scripts and notebooks, run on a private event loop thread."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Coroutine, Dict, Iterator, Optional, TypeVar, Union

from .client import Client, Handler
from .subscription import Subscription
from .types import Event, Resync, State

T = TypeVar("T")


class SyncClient:
    """A blocking client: the same driver and machine as :class:`Client`, on an event loop in a daemon thread of
    its own. Every method blocks until the answer (or ``timeout`` seconds, then ``TimeoutError``)::

        with switchboard.SyncClient("ws://127.0.0.1:8000/api/ws") as client:
            offset = client.publish("projects/p1", {"event_type": "log"})
            for ev in client.subscribe("projects/p1"):
                print(ev.offset, ev.event)

    Handlers given to :meth:`serve` run on that thread. Takes the same arguments as :class:`Client`, plus
    ``timeout``: the longest any blocking call waits (default: none beyond the request timeouts; starting waits at
    most 30 s).
    """

    def __init__(self, url: str, token: Optional[str] = None, *, timeout: Optional[float] = None, **options: Any):
        self._timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="switchboard", daemon=True)
        self._thread.start()
        self._client = Client(url, token, **options)
        try:
            self._run(self._client.start(), 30.0 if timeout is None else timeout)
        except BaseException:
            self.close()
            raise

    def _run(self, coro: Coroutine[Any, Any, T], timeout: Optional[float] = None) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(self._timeout if timeout is None else timeout)
        except BaseException:
            future.cancel()
            raise

    def __enter__(self) -> "SyncClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def app_id(self) -> Optional[str]:
        """The current connection's ``app_id``."""
        return self._client.app_id

    def publish(
        self, channel: str, event: Any, *, retain: bool = False, idempotency_key: Optional[str] = None
    ) -> int:
        """:meth:`Client.publish`."""
        return self._run(self._client.publish(channel, event, retain=retain, idempotency_key=idempotency_key))

    def call(self, channel: str, method: str, params: Any = None, *, timeout: Optional[float] = None) -> Any:
        """:meth:`Client.call`."""
        return self._run(self._client.call(channel, method, params, timeout=timeout))

    def get_state(self, channel: str) -> State:
        """:meth:`Client.get_state`."""
        return self._run(self._client.get_state(channel))

    def presence(self, channel: str) -> Dict[str, Any]:
        """:meth:`Client.presence`."""
        return self._run(self._client.presence(channel))

    def serve(self, channel: str, handler: Handler) -> None:
        """:meth:`Client.serve`; the handler runs on the client's thread."""
        self._run(self._client.serve(channel, handler))

    def subscribe(self, channel: str) -> "SyncSubscription":
        """:meth:`Client.subscribe`: iterate the result for the channel's events."""
        return SyncSubscription(self, self._run(self._client.subscribe(channel)))

    def close(self) -> None:
        """Closes the client and stops its thread. Idempotent."""
        if not self._thread.is_alive():
            return
        try:
            asyncio.run_coroutine_threadsafe(self._client.close(), self._loop).result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            if not self._thread.is_alive():
                self._loop.close()


class SyncSubscription:
    """A blocking iterator over a subscription's :class:`Event` and :class:`Resync` items."""

    def __init__(self, client: SyncClient, sub: Subscription) -> None:
        self._client = client
        self._sub = sub
        self.channel = sub.channel

    def __iter__(self) -> Iterator[Union[Event, Resync]]:
        return self

    def __next__(self) -> Union[Event, Resync]:
        try:
            return self._client._run(self._sub.get())
        except StopAsyncIteration:
            raise StopIteration from None

    def get(self, timeout: Optional[float] = None) -> Union[Event, Resync]:
        """The next item, waiting at most ``timeout`` seconds (``TimeoutError`` then)."""
        try:
            return self._client._run(self._sub.get(), timeout)
        except StopAsyncIteration:
            raise StopIteration from None

    def unsubscribe(self) -> None:
        """:meth:`Subscription.unsubscribe`."""
        self._client._run(self._sub.unsubscribe())
