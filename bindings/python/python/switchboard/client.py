""":class:`Client`: the asyncio driver of the Rust client machine.

The machine (``switchboard._native.Machine``) makes every decision: when to connect and reconnect, what to resend
and with which ``since``, which answer belongs to which request, when a request times out, when a silent connection
is dead. This driver only carries out what it says, in the run loop of the protocol crate:

1. drain ``poll_output()``: dial on ``connect``, queue frames on ``transmit``, close on ``close``, route ``event`` to
   the waiting futures and subscriptions, and remember the deadline of ``timeout``;
2. feed the machine what happened (``handle_connected``, ``handle_text``, ``handle_disconnected``, ...) with the
   monotonic time in microseconds, then drain again;
3. sleep until the deadline, then ``handle_timeout``.

Everything runs on one event loop: the machine is touched only from that loop's thread.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import time
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Tuple, Union

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from . import _native
from .errors import (
    ClientClosed,
    ConnectionRejected,
    HandlerError,
    ServerError,
    SubscriptionLost,
    SwitchboardError,
    from_fail_reason,
)
from .subscription import Subscription
from .types import Caller, Event, Resync, State

log = logging.getLogger("switchboard")

Handler = Callable[[str, Any, Optional[Caller]], Union[Any, Awaitable[Any]]]
"""A ``serve`` handler: ``handler(method, params, caller)`` returning (or awaiting to) a JSON-serialisable result."""

# An upgrade answered with one of these cannot succeed by retrying: a bad token or a wrong URL.
_REJECTING_STATUS = (401, 403, 404)


def _now() -> int:
    return time.monotonic_ns() // 1000


def _ms(seconds: Optional[float]) -> Optional[int]:
    if seconds is None:
        return None
    if seconds < 0:
        raise ValueError("a timeout must not be negative")
    return int(seconds * 1000)


def _dumps(value: Any) -> str:
    # TypeError for what JSON cannot hold, ValueError for NaN and infinities: raised before anything is sent.
    return json.dumps(value, allow_nan=False, separators=(",", ":"))


class _Link:
    """One connection attempt and, once up, its socket and writer."""

    def __init__(self) -> None:
        self.ws: Optional[ClientConnection] = None
        self.dial: Optional["asyncio.Task[None]"] = None
        self.reader: Optional["asyncio.Task[None]"] = None
        self.writer: Optional["asyncio.Task[None]"] = None
        # Frames to send, in order; a (code, reason) tuple closes the socket after the frames before it.
        self.outbox: "asyncio.Queue[Union[str, Tuple[int, str]]]" = asyncio.Queue()


class Client:
    """A Switchboard client for asyncio.

    ::

        async with switchboard.Client("ws://127.0.0.1:8000/api/ws", token=None) as client:
            sub = await client.subscribe("projects/p1")
            offset = await client.publish("projects/p1", {"event_type": "log"})
            async for ev in sub:
                print(ev.channel, ev.offset, ev.event)

    Commands issued while disconnected wait in a bounded offline queue and go out after the reconnect. Subscriptions
    and ``serve`` registrations are re-established on every connection by the machine.

    Args:
        url: the server's WebSocket endpoint, e.g. ``ws://127.0.0.1:8000/api/ws``.
        token: a bearer token (JWT or API key) sent on every upgrade.
        request_timeout: default seconds a request waits for its answer (offline time included). Default 30.
        connect_timeout: seconds a dial, and then the server's greeting, may take. Default 10.
        heartbeat_timeout: seconds added to the server's heartbeat interval before a silent connection is replaced.
        ping_interval: when set, the client also pings at this interval (seconds).
        reconnect_first: the first reconnect delay in seconds (default 0.5; doubled per retry, full jitter).
        reconnect_max: the longest reconnect delay in seconds (default 30).
        max_queued: how many commands the offline queue holds (default 1000).
        seed: seeds message ids and reconnect jitter (default: from ``os.urandom``).
        on_notification: called with each ``notification`` frame's data (a dict).
        token_provider: a function (plain or ``async``) returning a fresh token. It is asked before every
            reconnect, and when the server warns that the token expires soon (then the token is presented on the
            open connection with ``refresh``).
    """

    def __init__(
        self,
        url: str,
        token: Optional[str] = None,
        *,
        request_timeout: Optional[float] = None,
        connect_timeout: Optional[float] = None,
        heartbeat_timeout: Optional[float] = None,
        ping_interval: Optional[float] = None,
        reconnect_first: Optional[float] = None,
        reconnect_max: Optional[float] = None,
        max_queued: Optional[int] = None,
        seed: Optional[int] = None,
        on_notification: Optional[Callable[[Dict[str, Any]], None]] = None,
        token_provider: Optional[Callable[[], Union[str, Awaitable[str]]]] = None,
    ) -> None:
        if not (url.startswith("ws://") or url.startswith("wss://")):
            raise ValueError(f"the URL must start with ws:// or wss://: {url!r}")
        self.url = url
        self._headers: Dict[str, str] = {}
        self._set_token(token)
        self._token_provider = token_provider
        self._dialed = False
        self._knobs: Dict[str, Any] = {
            "request_timeout_ms": _ms(request_timeout),
            "connect_timeout_ms": _ms(connect_timeout),
            "heartbeat_timeout_ms": _ms(heartbeat_timeout),
            "ping_interval_ms": _ms(ping_interval),
            "reconnect_first_ms": _ms(reconnect_first),
            "reconnect_max_ms": _ms(reconnect_max),
            "max_queued_messages": max_queued,
        }
        self._seed = seed if seed is not None else int.from_bytes(os.urandom(8), "little")
        self._on_notification = on_notification
        self._machine: Optional[_native.Machine] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._link: Optional[_Link] = None
        self._deadline: Optional[int] = None
        self._deadline_changed: Optional[asyncio.Event] = None
        self._connected: Optional[asyncio.Event] = None
        self._ticker: Optional["asyncio.Task[None]"] = None
        self._waiting: Dict[str, "asyncio.Future[Dict[str, Any]]"] = {}
        self._subs: Dict[str, List[Subscription]] = {}
        self._handlers: Dict[str, Handler] = {}
        self._tasks: "set[asyncio.Task[Any]]" = set()
        self._closing_links: "set[asyncio.Task[Any]]" = set()
        self._gave_up: Optional[SwitchboardError] = None
        self._draining = False
        self.app_id: Optional[str] = None
        """The current connection's ``app_id`` (the ``caller`` others' handlers see), once greeted."""

    # ------------------------------------------------------------------------------------------------------------
    # Lifecycle

    async def __aenter__(self) -> "Client":
        try:
            await self.start()
        except BaseException:
            # Refused, or cancelled while still connecting: stop what was started.
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self, wait: bool = True) -> None:
        """Starts the driver; with ``wait``, returns once the first connection is greeted, or raises the reason the
        client gave up (e.g. :class:`ConnectionRejected` for a refused token). Bound it with ``asyncio.wait_for``:
        an unreachable server is retried for ever."""
        if self._machine is None:
            self._loop = asyncio.get_running_loop()
            self._deadline_changed = asyncio.Event()
            self._connected = asyncio.Event()
            self._machine = _native.Machine(_now(), self._seed, **self._knobs)
            self._ticker = asyncio.ensure_future(self._tick())
            self._drain()
        if wait:
            await self.wait_connected()

    async def wait_connected(self) -> None:
        """Waits until a connection is open and greeted; raises the client's error if it gave up or was closed."""
        assert self._connected is not None, "start() the client first"
        while not self._connected.is_set():
            self._raise_if_closed()
            waiter = asyncio.ensure_future(self._connected.wait())
            ticker = self._ticker
            assert ticker is not None
            await asyncio.wait({waiter, ticker}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if ticker.done():
                self._raise_if_closed()

    @property
    def is_connected(self) -> bool:
        """Whether a greeted connection is open now."""
        return self._machine is not None and self._machine.is_connected()

    @property
    def is_closed(self) -> bool:
        """Whether the client stopped for good (closed, or gave up reconnecting)."""
        return self._machine is not None and self._machine.is_closed()

    async def close(self) -> None:
        """Closes the client: the connection closes with 1000, pending requests fail with :class:`ClientClosed`,
        subscriptions end. Idempotent."""
        machine = self._machine
        if machine is None:
            return
        if not machine.is_closed():
            machine.close(_now())
            self._drain()
        self._end_subscriptions()
        if self._ticker is not None:
            await self._ticker
        for task in list(self._tasks):
            task.cancel()
        if self._closing_links:
            await asyncio.wait(set(self._closing_links), timeout=5)
        link = self._link
        self._link = None
        if link is not None:
            self._abandon(link, 1000, "client closing")
            if self._closing_links:
                await asyncio.wait(set(self._closing_links), timeout=5)

    # ------------------------------------------------------------------------------------------------------------
    # Commands

    async def subscribe(self, channel: str, *, presence: bool = False) -> Subscription:
        """Subscribes to a channel and returns its :class:`Subscription` once the server confirmed it. The machine
        keeps it subscribed across reconnects, resuming after the last offset delivered.

        Raises:
            ValueError: an invalid channel name (nothing is sent).
            ForbiddenError: the token does not allow it; other :class:`ServerError` subclasses likewise.
        """
        machine = self._live()
        sub = Subscription(self, channel)
        try:
            mid = machine.subscribe(_now(), channel, presence)
        except _native.MachineClosed:
            raise self._closed_error() from None
        self._subs.setdefault(channel, []).append(sub)
        try:
            await self._answer(mid)
        except BaseException:
            self._forget(sub)
            raise
        return sub

    async def publish(
        self, channel: str, event: Any, *, retain: bool = False, idempotency_key: Optional[str] = None
    ) -> int:
        """Publishes an event (any JSON value but ``None``) and returns its offset; ``retain`` makes it the
        channel's state. With ``idempotency_key`` (1 to 128 bytes), a publish whose key the channel saw within
        the server's dedupe window publishes nothing and returns the original offset: publish again under the
        same key after an error that leaves it unknown whether the first landed.

        Raises:
            TypeError: the event is not JSON-serialisable (nothing is sent).
            ValueError: an invalid channel name, a ``None`` event, NaN or infinity, or a frame over the size limit.
        """
        text = _dumps(event)
        answer = await self._ask(lambda m, now: m.publish(now, channel, text, retain, idempotency_key))
        return int(answer["data"]["offset"])

    async def get_state(self, channel: str) -> State:
        """The channel's retained state (``state`` is ``None`` when nothing was retained)."""
        answer = await self._ask(lambda m, now: m.get_state(now, channel))
        data = answer["data"]
        return State(channel=data["channel"], epoch=data["epoch"], offset=int(data["offset"]), state=data["state"])

    async def presence(self, channel: str) -> Dict[str, Any]:
        """Who is on the channel: ``{channel, count, serving, members}``."""
        answer = await self._ask(lambda m, now: m.presence(now, channel))
        return dict(answer["data"])

    async def call(self, channel: str, method: str, params: Any = None, *, timeout: Optional[float] = None) -> Any:
        """Calls ``method`` on whoever serves the channel and returns its result.

        Raises:
            NoHandlerError: nobody serves the channel.
            RequestTimeout: no answer within ``timeout`` seconds (default: the client's request timeout).
            ServerError: the handler answered with an error (its code, message and details).
        """
        text = None if params is None else _dumps(params)
        timeout_ms = _ms(timeout)
        answer = await self._ask(lambda m, now: m.call(now, channel, method, text, timeout_ms))
        return answer["data"].get("result")

    async def serve(self, channel: str, handler: Handler) -> None:
        """Serves the channel: calls on it run ``handler(method, params, caller)`` (a plain or ``async`` function)
        and its return value goes back to the caller. An exception in the handler reaches the caller as an error:
        :class:`HandlerError` with its code and message, anything else as ``INTERNAL_ERROR``. The machine
        re-registers the channel on every connection."""
        self._live()
        previous = self._handlers.get(channel)
        self._handlers[channel] = handler
        try:
            await self._ask(lambda m, now: m.serve(now, channel))
        except BaseException:
            if previous is None:
                self._handlers.pop(channel, None)
            else:
                self._handlers[channel] = previous
            raise

    async def refresh(self, token: str) -> Optional[int]:
        """Presents a fresh token: the open connection takes its grants and expiry (subscriptions and ``serve``
        registrations it does not allow end), and every later reconnect presents it. Returns the milliseconds until
        the connection expires (``None``: never).

        Raises:
            ForbiddenError: the server refused the token; the connection keeps its old grants, and reconnects
                present the old token.
        """
        previous = dict(self._headers)
        self._set_token(token)
        try:
            answer = await self._ask(lambda m, now: m.refresh(now, token))
        except ServerError:
            # A refused token is not presented again: reconnects keep the one that works.
            self._headers.clear()
            self._headers.update(previous)
            raise
        expires = answer["data"].get("expires_in_ms")
        return None if expires is None else int(expires)

    async def request(
        self, request_type: str, data: Optional[Mapping[str, Any]] = None, *, timeout: Optional[float] = None
    ) -> Dict[str, Any]:
        """Sends any other request type (``ping``, ``create_session``, an application's own) and returns the
        answer's ``data``."""
        text = _dumps(dict(data or {}))
        timeout_ms = _ms(timeout)
        answer = await self._ask(lambda m, now: m.request(now, request_type, text, timeout_ms))
        return dict(answer["data"])

    # ------------------------------------------------------------------------------------------------------------
    # Issuing and answering

    def _set_token(self, token: Optional[str]) -> None:
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        else:
            self._headers.pop("Authorization", None)

    async def _fresh_token(self) -> Optional[str]:
        """The provider's newest token, or ``None`` without a provider (or when it fails)."""
        if self._token_provider is None:
            return None
        try:
            token = self._token_provider()
            if inspect.isawaitable(token):
                token = await token
        except Exception:  # noqa: BLE001 - a failing provider leaves the current token in place
            log.warning("the token provider failed", exc_info=True)
            return None
        if token:
            self._set_token(token)
        return token or None

    async def _refresh_from_provider(self) -> None:
        token = await self._fresh_token()
        if token is None:
            log.warning("the token expires soon and no fresh token came; the server will close the connection then")
            return
        try:
            await self.refresh(token)
        except SwitchboardError as e:
            log.warning("refresh refused: %s", e)

    def _live(self) -> _native.Machine:
        if self._machine is None:
            raise ClientClosed("the client is not started: use `async with` or `await client.start()`")
        self._raise_if_closed()
        return self._machine

    def _raise_if_closed(self) -> None:
        if self._machine is not None and self._machine.is_closed():
            raise self._closed_error()

    def _closed_error(self) -> SwitchboardError:
        if self._gave_up is not None:
            return type(self._gave_up)(*self._gave_up.args)
        return ClientClosed("the client is closed")

    async def _ask(self, issue: Callable[[_native.Machine, int], str]) -> Dict[str, Any]:
        machine = self._live()
        try:
            mid = issue(machine, _now())
        except _native.MachineClosed:
            raise self._closed_error() from None
        return await self._answer(mid)

    async def _answer(self, mid: str) -> Dict[str, Any]:
        assert self._loop is not None
        future: "asyncio.Future[Dict[str, Any]]" = self._loop.create_future()
        self._waiting[mid] = future
        self._drain()
        try:
            return await future
        finally:
            self._waiting.pop(mid, None)

    async def _unsubscribe(self, sub: Subscription) -> None:
        self._forget(sub)
        sub._end()
        machine = self._machine
        if sub.channel in self._subs or machine is None or machine.is_closed():
            return
        try:
            await self._ask(lambda m, now: m.unsubscribe(now, sub.channel))
        except ClientClosed:
            pass

    def _forget(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.channel)
        if subs and sub in subs:
            subs.remove(sub)
            if not subs:
                del self._subs[sub.channel]

    # ------------------------------------------------------------------------------------------------------------
    # The run loop

    def _drain(self) -> None:
        """Carries out every output of the machine until it names its next deadline."""
        machine = self._machine
        if machine is None or self._draining:
            return
        self._draining = True
        try:
            while True:
                kind, text, number = machine.poll_output()
                if kind == "timeout":
                    if number != self._deadline:
                        self._deadline = number
                        assert self._deadline_changed is not None
                        self._deadline_changed.set()
                    break
                if kind == "transmit":
                    assert text is not None
                    if self._link is not None:
                        self._link.outbox.put_nowait(text)
                elif kind == "event":
                    assert text is not None
                    self._on_event(json.loads(text))
                elif kind == "connect":
                    self._dial()
                elif kind == "close":
                    link = self._link
                    self._link = None
                    if link is not None:
                        self._abandon(link, int(number or 1000), text or "")
        finally:
            self._draining = False
        if machine.is_closed() and self._deadline_changed is not None:
            # Wake the ticker so it sees the end.
            self._deadline_changed.set()

    async def _tick(self) -> None:
        """Sleeps until the machine's deadline and lets its timers fire; ends when the machine stops."""
        assert self._deadline_changed is not None and self._machine is not None
        while not self._machine.is_closed():
            self._deadline_changed.clear()
            deadline = self._deadline
            if deadline is None:
                await self._deadline_changed.wait()
                continue
            delay = (deadline - _now()) / 1e6
            if delay > 0:
                try:
                    await asyncio.wait_for(self._deadline_changed.wait(), delay)
                    continue
                except asyncio.TimeoutError:
                    pass
            now = _now()
            if now >= deadline and self._deadline == deadline:
                self._machine.handle_timeout(now)
                self._drain()
            else:
                # Woken a hair early: let the clock pass the deadline.
                await asyncio.sleep(0)

    def _dial(self) -> None:
        if self._link is not None:
            # The machine only asks again once it let go of the last connection: close anything left.
            self._abandon(self._link, 1000, "replaced")
        link = _Link()
        self._link = link
        link.dial = asyncio.ensure_future(self._open(link))

    async def _open(self, link: _Link) -> None:
        if self._dialed:
            await self._fresh_token()
        self._dialed = True
        try:
            ws = await connect(
                self.url,
                additional_headers=self._headers,
                # The machine owns liveness (server pings, heartbeat timeout) and the connect timeout.
                ping_interval=None,
                open_timeout=None,
                max_size=None,
            )
        except asyncio.CancelledError:
            raise
        except InvalidStatus as e:
            status = e.response.status_code
            body = e.response.body.decode("utf-8", "replace").strip() if e.response.body else ""
            self._dial_failed(link, f"the upgrade was answered with HTTP {status} {body}", status in _REJECTING_STATUS)
            return
        except Exception as e:  # noqa: BLE001 - every other failure is worth retrying; the machine decides when
            self._dial_failed(link, f"{type(e).__name__}: {e}", False)
            return
        if link is not self._link:
            await ws.close(1000, "abandoned")
            return
        link.ws = ws
        link.writer = asyncio.ensure_future(self._write(link, ws))
        link.reader = asyncio.ensure_future(self._read(link, ws))
        assert self._machine is not None
        self._machine.handle_connected(_now())
        self._drain()

    def _dial_failed(self, link: _Link, reason: str, rejected: bool) -> None:
        if link is not self._link or self._machine is None:
            return
        self._link = None
        log.debug("connecting to %s failed: %s", self.url, reason)
        self._machine.handle_connect_failed(_now(), reason, rejected)
        self._drain()

    async def _read(self, link: _Link, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                if link is not self._link:
                    return
                if isinstance(message, str):
                    assert self._machine is not None
                    self._machine.handle_text(_now(), message)
                    self._drain()
        except Exception as e:  # noqa: BLE001 - a connection ending for any reason is reported below
            log.debug("connection ended: %r", e)
        if link is not self._link or self._machine is None:
            return
        self._link = None
        code = ws.close_code if ws.close_code is not None else 1006
        reason = ws.close_reason or ""
        if link.writer is not None:
            link.writer.cancel()
        self._machine.handle_disconnected(_now(), code, reason)
        self._drain()

    async def _write(self, link: _Link, ws: ClientConnection) -> None:
        while True:
            item = await link.outbox.get()
            if isinstance(item, tuple):
                code, reason = item
                try:
                    await ws.close(code, reason)
                except Exception as e:  # noqa: BLE001 - the socket is being let go of anyway
                    log.debug("close failed: %r", e)
                return
            try:
                await ws.send(item)
            except Exception as e:  # noqa: BLE001 - the reader sees the connection end and reports it
                log.debug("send failed: %r", e)
                return

    def _abandon(self, link: _Link, code: int, reason: str) -> None:
        """Lets go of a connection the machine no longer counts: a dial is cancelled, a socket closed after the
        frames already queued on it."""
        if link.dial is not None and not link.dial.done():
            link.dial.cancel()
        if link.ws is None:
            return
        if link.writer is not None and not link.writer.done():
            link.outbox.put_nowait((code, reason))
            task = link.writer
        else:
            task = asyncio.ensure_future(link.ws.close(code, reason))
        for waited in (task, link.reader):
            if waited is not None and not waited.done():
                self._closing_links.add(waited)
                waited.add_done_callback(self._closing_links.discard)

    # ------------------------------------------------------------------------------------------------------------
    # Events

    def _on_event(self, ev: Dict[str, Any]) -> None:
        kind = ev["kind"]
        if kind == "channel_event":
            item = Event(channel=ev["channel"], epoch=ev["epoch"], offset=int(ev["offset"]), event=ev["event"])
            for sub in self._subs.get(ev["channel"], ()):
                sub._push(item)
        elif kind == "response":
            future = self._waiting.pop(ev["id"], None)
            if future is not None and not future.done():
                future.set_result(ev)
        elif kind == "request_failed":
            future = self._waiting.pop(ev["id"], None)
            if future is not None and not future.done():
                future.set_exception(from_fail_reason(ev["reason"], self._closed_error()))
        elif kind == "resync":
            log.warning("events of %s were lost: resync", ev["channel"])
            for sub in self._subs.get(ev["channel"], ()):
                sub._push(Resync(channel=ev["channel"]))
        elif kind == "call_request":
            self._spawn(self._run_handler(ev))
        elif kind == "server_request":
            self._refuse(ev["id"], "NO_HANDLER", f"this client answers no {ev['request_type']} request")
        elif kind == "connected":
            self.app_id = ev["app_id"]
            assert self._connected is not None
            self._connected.set()
        elif kind == "disconnected":
            assert self._connected is not None
            self._connected.clear()
            log.info("disconnected (%s %s)", ev["code"], ev["reason"])
        elif kind == "reconnecting":
            log.info("reconnecting in %s ms (attempt %s)", ev["delay_ms"], ev["attempt"])
        elif kind == "subscription_lost":
            cause = from_fail_reason(ev["reason"], self._closed_error())
            for sub in self._subs.pop(ev["channel"], []):
                sub._end(SubscriptionLost(ev["channel"], cause))
        elif kind == "serve_lost":
            log.warning("serving %s lost: %s", ev["channel"], ev["reason"])
            self._handlers.pop(ev["channel"], None)
        elif kind == "gave_up":
            reason = ev["reason"]
            self._gave_up = ConnectionRejected(f"the client gave up: {reason['reason']}")
            if reason["kind"] == "retries_exhausted":
                self._gave_up = ClientClosed(f"the client gave up: {reason['reason']}")
            log.warning("%s", self._gave_up)
            for subs in self._subs.values():
                for sub in subs:
                    sub._end(self._closed_error())
            self._subs.clear()
        elif kind == "notification":
            if self._on_notification is not None:
                self._on_notification({k: v for k, v in ev.items() if k != "kind"})
        elif kind == "token_expiring":
            log.info("the token expires in %s ms", ev["expires_in_ms"])
            self._spawn(self._refresh_from_provider())
        else:
            log.debug("%s", ev)
        if self._machine is not None and self._machine.is_closed() and kind != "gave_up":
            self._end_subscriptions()

    def _end_subscriptions(self) -> None:
        for subs in self._subs.values():
            for sub in subs:
                sub._end()
        self._subs.clear()

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_handler(self, ev: Dict[str, Any]) -> None:
        handler = self._handlers.get(ev["channel"])
        if handler is None:
            self._refuse(ev["id"], "NO_HANDLER", f"this client does not serve {ev['channel']}")
            self._drain()
            return
        raw = ev.get("caller")
        caller = Caller(app_id=raw["app_id"], sub=raw.get("sub"), key=raw.get("key")) if raw else None
        try:
            result = handler(ev["method"], ev["params"], caller)
            if inspect.isawaitable(result):
                result = await result
            text = _dumps(result)
        except HandlerError as e:
            self._refuse(ev["id"], e.code, e.message)
        except Exception as e:  # noqa: BLE001 - any failure of the handler is the caller's answer
            log.debug("handler for %s.%s failed", ev["channel"], ev["method"], exc_info=True)
            self._refuse(ev["id"], "HANDLER_ERROR", f"{type(e).__name__}: {e}")
        else:
            machine = self._machine
            if machine is not None and not machine.is_closed():
                try:
                    machine.respond_ok(_now(), ev["id"], text)
                except ValueError as e:
                    # The request's connection is gone, or the answer is over the size limit.
                    log.warning("answer to %s.%s not sent: %s", ev["channel"], ev["method"], e)
                    if "over the limit" in str(e):
                        self._refuse(ev["id"], "HANDLER_ERROR", str(e))
        self._drain()

    def _refuse(self, mid: str, code: str, message: str) -> None:
        machine = self._machine
        if machine is None or machine.is_closed():
            return
        try:
            machine.respond_error(_now(), mid, code, message)
        except ValueError as e:
            log.debug("error answer to %s not sent: %s", mid, e)
