"""The Python package against a real `switchboard serve`: every test is bounded by asyncio.wait_for and stops what
it starts (the server fixture, the clients, the proxy)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Awaitable, List, Optional, TypeVar

import pytest

import switchboard
from switchboard import Event, Resync

from conftest import CuttingProxy

T = TypeVar("T")
LIMIT = 30.0


def run(coro: Awaitable[T], limit: float = LIMIT) -> T:
    """Runs one test body on a fresh loop, failing it after `limit` seconds."""
    return asyncio.run(asyncio.wait_for(coro, limit))  # type: ignore[arg-type]


def fast(url: str, token: Optional[str] = None, **options: Any) -> switchboard.Client:
    """A client that reconnects quickly (tests cut connections on purpose)."""
    options.setdefault("reconnect_first", 0.05)
    options.setdefault("reconnect_max", 0.2)
    return switchboard.Client(url, token, **options)


def test_subscribe_publish_receive_and_get_state(server: Any) -> None:
    async def body() -> None:
        async with fast(server.url) as sub_client, fast(server.url) as pub_client:
            sub = await sub_client.subscribe("projects/p1")
            offsets = [
                await pub_client.publish("projects/p1", {"event_type": "log", "data": {"n": n}}, retain=True)
                for n in range(3)
            ]
            assert offsets == [1, 2, 3]
            got = [await sub.get() for _ in range(3)]
            assert all(isinstance(ev, Event) for ev in got)
            assert [ev.offset for ev in got] == offsets
            assert [ev.event["data"]["n"] for ev in got] == [0, 1, 2]
            assert {ev.channel for ev in got} == {"projects/p1"}
            state = await sub_client.get_state("projects/p1")
            assert state.offset == 3 and state.state == {"event_type": "log", "data": {"n": 2}}
            assert state.epoch == got[0].epoch
            assert isinstance(sub_client.app_id, str) and sub_client.app_id

    run(body())


def test_every_event_exactly_once_in_order_across_connection_cuts(server: Any) -> None:
    """A subscriber behind a proxy that cuts its connection again and again receives 1,000 events exactly once, in
    order: the machine resubscribes with `since` and drops what it already delivered."""

    async def body() -> None:
        proxy = await CuttingProxy(server.addr).start()
        try:
            async with fast(proxy.url) as subscriber, fast(server.url) as publisher:
                sub = await subscriber.subscribe("projects/cut")
                received: List[int] = []
                total = 1000

                async def publish_all() -> None:
                    for n in range(total):
                        await publisher.publish("projects/cut", {"n": n})
                        if n % 150 == 75:
                            # Cut a live connection, not a reconnect still under way.
                            await subscriber.wait_connected()
                            assert proxy.cut() > 0
                            # Let the cut land mid-stream, then keep publishing while the subscriber is away.
                            await asyncio.sleep(0.01)

                publishing = asyncio.ensure_future(publish_all())
                while len(received) < total:
                    # Bounded per item, so a failed publisher fails the test at once rather than at the limit.
                    item = await asyncio.wait_for(sub.get(), 15)
                    assert not isinstance(item, Resync), "the server's history covers the gap: no resync"
                    assert isinstance(item, Event)
                    received.append(item.event["n"])
                await publishing
                assert received == list(range(total))
                assert proxy.connections >= 8, f"only {proxy.connections} connections: the cuts did not land"
        finally:
            await proxy.stop()

    run(body(), 120)


def test_every_event_exactly_once_across_a_server_restart(make_server: Any, tmp_path: Any) -> None:
    """The server process stops and starts again on the same port with the same data directory: the subscriber
    resumes after its last offset, with no gap, no duplicate and no resync."""
    server = make_server("--data-dir", str(tmp_path))

    async def body() -> None:
        async with fast(server.url) as subscriber, fast(server.url) as publisher:
            sub = await subscriber.subscribe("projects/restart")
            for n in range(50):
                await publisher.publish("projects/restart", {"n": n})
            received = []
            for _ in range(25):
                item = await asyncio.wait_for(sub.get(), 15)
                assert isinstance(item, Event)
                received.append(item.event["n"])
            await asyncio.get_running_loop().run_in_executor(None, server.restart)
            await publisher.wait_connected()
            for n in range(50, 100):
                # A publish caught by the restart fails as disconnected (it is never re-sent): publish it again.
                while True:
                    try:
                        await publisher.publish("projects/restart", {"n": n})
                        break
                    except switchboard.Disconnected:
                        await publisher.wait_connected()
            while len(received) < 100:
                item = await asyncio.wait_for(sub.get(), 15)
                assert isinstance(item, Event), item
                received.append(item.event["n"])
            assert received == list(range(100))

    run(body(), 60)


def test_a_gap_the_server_cannot_replay_yields_resync(make_server: Any) -> None:
    """With a history of 5 events, a subscriber away for 20 sees a Resync item, then the live events: never a silent
    gap."""
    server = make_server("--history-size", "5")

    async def body() -> None:
        proxy = await CuttingProxy(server.addr).start()
        try:
            async with fast(proxy.url) as subscriber, fast(server.url) as publisher:
                sub = await subscriber.subscribe("projects/gap")
                assert await publisher.publish("projects/gap", {"n": 1}) == 1
                first = await asyncio.wait_for(sub.get(), 10)
                assert isinstance(first, Event) and first.offset == 1
                proxy.hold()
                assert proxy.cut() > 0
                for n in range(2, 22):
                    await publisher.publish("projects/gap", {"n": n})
                proxy.release()
                resync = await asyncio.wait_for(sub.get(), 15)
                assert resync == Resync(channel="projects/gap")
                await publisher.publish("projects/gap", {"n": 22})
                # What the server still held may be replayed; past the resync, offsets only go forward.
                offsets = []
                while not offsets or offsets[-1] < 22:
                    item = await asyncio.wait_for(sub.get(), 15)
                    assert isinstance(item, Event), item
                    offsets.append(item.offset)
                assert offsets == sorted(set(offsets)) and offsets[0] > 2
                state = await subscriber.get_state("projects/gap")
                assert state.offset == 22
        finally:
            await proxy.stop()

    run(body())


def test_call_between_two_clients(server: Any) -> None:
    async def body() -> None:
        async with fast(server.url) as worker, fast(server.url) as caller:
            seen: List[Any] = []

            async def handler(method: str, params: Any, who: Optional[switchboard.Caller]) -> Any:
                seen.append(who)
                if method == "status":
                    return {"ok": True, "verbose": params["verbose"]}
                raise switchboard.HandlerError("NOT_FOUND", f"no method {method}")

            await worker.serve("projects/p1", handler)
            result = await caller.call("projects/p1", "status", {"verbose": True}, timeout=10)
            assert result == {"ok": True, "verbose": True}
            assert seen[0] is not None and seen[0].app_id == caller.app_id

            # A code outside the contract reaches the caller as INTERNAL_ERROR with the handler's code in details.
            with pytest.raises(switchboard.InternalServerError) as raised:
                await caller.call("projects/p1", "missing")
            assert raised.value.details["code"] == "NOT_FOUND"
            assert "no method missing" in raised.value.message

    run(body())


def test_a_handler_raising_reaches_the_caller_as_an_error(server: Any) -> None:
    async def body() -> None:
        async with fast(server.url) as worker, fast(server.url) as caller:

            def handler(method: str, params: Any, who: Any) -> Any:
                if method == "forbidden":
                    raise switchboard.HandlerError("FORBIDDEN", "not for you")
                raise RuntimeError("the model crashed")

            await worker.serve("projects/p2", handler)
            with pytest.raises(switchboard.InternalServerError) as raised:
                await caller.call("projects/p2", "run")
            assert "RuntimeError: the model crashed" in raised.value.message
            assert raised.value.details["code"] == "HANDLER_ERROR"
            with pytest.raises(switchboard.ForbiddenError) as forbidden:
                await caller.call("projects/p2", "forbidden")
            assert forbidden.value.message == "not for you"
            assert isinstance(forbidden.value, switchboard.SwitchboardError)

    run(body())


def test_no_handler_and_request_timeout(server: Any) -> None:
    async def body() -> None:
        async with fast(server.url) as worker, fast(server.url) as caller:
            with pytest.raises(switchboard.NoHandlerError) as raised:
                await caller.call("projects/nobody", "status")
            assert raised.value.code == "NO_HANDLER"

            release = asyncio.Event()

            async def slow(method: str, params: Any, who: Any) -> Any:
                await release.wait()
                return "late"

            await worker.serve("projects/slow", slow)
            with pytest.raises(switchboard.RequestTimeout):
                await caller.call("projects/slow", "wait", timeout=0.3)
            release.set()
            # The late answer is dropped by the machine; the client goes on working.
            assert await caller.publish("projects/slow", {"after": "timeout"}) == 1

    run(body())


def test_forbidden_with_an_api_key_and_a_refused_token(make_server: Any) -> None:
    server = make_server("--api-key", "reader:subscribe=projects/*")

    async def body() -> None:
        async with fast(server.url, token="reader") as client:
            await client.subscribe("projects/p1")
            with pytest.raises(switchboard.ForbiddenError) as raised:
                await client.publish("projects/p1", {"x": 1})
            assert raised.value.code == "FORBIDDEN" and raised.value.message

        # A token the server does not know: the upgrade is refused, the machine gives up at once.
        with pytest.raises(switchboard.ConnectionRejected) as rejected:
            async with fast(server.url, token="wrong"):
                pass
        assert "401" in str(rejected.value)
        assert isinstance(rejected.value, switchboard.ClientClosed)

    run(body())


async def publish_until_sent(client: switchboard.Client, channel: str, event: Any) -> int:
    """Publishes once the client has a live connection: a publish caught on a connection that was just cut fails as
    `Disconnected` (never re-sent), and is issued again."""
    while True:
        try:
            return await client.publish(channel, event)
        except switchboard.Disconnected:
            await asyncio.sleep(0.01)


def test_refresh_and_the_token_provider_change_the_grants(make_server: Any) -> None:
    server = make_server(
        "--api-key", "reader:subscribe=projects/*", "--api-key", "writer:subscribe=projects/*,publish=projects/*"
    )

    async def body() -> None:
        proxy = await CuttingProxy(server.addr).start()
        try:
            async with fast(proxy.url, token="reader") as client:
                with pytest.raises(switchboard.ForbiddenError):
                    await client.publish("projects/p1", {"n": 0})
                # An API key does not expire.
                assert await client.refresh("writer") is None
                assert await client.publish("projects/p1", {"n": 1}) == 1
                with pytest.raises(switchboard.ForbiddenError):
                    await client.refresh("nobody")
                # The reconnect after a cut presents the refreshed token: publishing is still allowed.
                assert proxy.cut() > 0
                assert await publish_until_sent(client, "projects/p1", {"n": 2}) == 2
                assert proxy.connections >= 2

            asked: List[str] = []

            async def provider() -> str:
                asked.append("writer")
                return "writer"

            async with fast(proxy.url, token="reader", token_provider=provider) as client:
                with pytest.raises(switchboard.ForbiddenError):
                    await client.publish("projects/p1", {"n": 3})
                assert asked == [], "the first dial uses the token given"
                assert proxy.cut() > 0
                assert await publish_until_sent(client, "projects/p1", {"n": 3}) == 3
                assert asked, "the reconnect asked the provider"
        finally:
            await proxy.stop()

    run(body())


def test_bad_input_is_refused_before_anything_is_sent(server: Any) -> None:
    async def body() -> None:
        async with fast(server.url) as client:
            with pytest.raises(ValueError):
                await client.subscribe("no spaces allowed")
            with pytest.raises(ValueError):
                await client.publish("", {"x": 1})
            with pytest.raises(TypeError):
                await client.publish("projects/p1", {"when": object()})
            with pytest.raises(ValueError):
                await client.publish("projects/p1", None)
            with pytest.raises(ValueError):
                await client.publish("projects/p1", float("nan"))
            # Nothing of the above went out: the first publish is offset 1.
            assert await client.publish("projects/p1", {"ok": True}) == 1

    run(body())


def test_commands_issued_offline_go_out_after_the_reconnect(server: Any) -> None:
    async def body() -> None:
        proxy = await CuttingProxy(server.addr).start()
        try:
            async with fast(proxy.url) as client:
                proxy.hold()
                assert proxy.cut() > 0
                while client.is_connected:
                    await asyncio.sleep(0.01)
                # Offline: the publish waits in the machine's queue; nothing fails.
                publishing = asyncio.ensure_future(client.publish("projects/offline", {"queued": True}))
                await asyncio.sleep(0.3)
                assert not publishing.done()
                proxy.release()
                assert await asyncio.wait_for(publishing, 10) == 1
                state = await client.get_state("projects/offline")
                assert state.state is None and state.offset == 1
        finally:
            await proxy.stop()

    run(body())


def test_an_unreachable_server_is_retried_until_the_caller_gives_up() -> None:
    async def body() -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        client = fast(f"ws://127.0.0.1:{port}/api/ws")
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(client.__aenter__(), 0.5)
        # The cancelled start stopped the client.
        assert client.is_closed
        with pytest.raises(switchboard.ClientClosed):
            await client.publish("projects/p1", {"x": 1})

    run(body())


def test_every_wire_code_has_its_exception() -> None:
    from switchboard import _native
    from switchboard.errors import ServerError, server_error

    for code in _native.ERROR_CODES:
        error = server_error(code, "text", {"k": 1})
        assert type(error) is not ServerError, f"no exception class for {code}"
        assert error.code == code and error.message == "text" and error.details == {"k": 1}
        assert isinstance(error, switchboard.SwitchboardError)
    assert isinstance(server_error("REQUEST_TIMEOUT", "late"), switchboard.RequestTimeout)
    unknown = server_error("FUTURE_CODE", "new")
    assert type(unknown) is ServerError and unknown.code == "FUTURE_CODE"


def test_closed_client_refuses_and_ends_subscriptions(server: Any) -> None:
    async def body() -> None:
        client = fast(server.url)
        await client.start()
        sub = await client.subscribe("projects/p1")
        await client.close()
        assert client.is_closed
        with pytest.raises(StopAsyncIteration):
            await sub.get()
        with pytest.raises(switchboard.ClientClosed):
            await client.publish("projects/p1", {"x": 1})
        await client.close()

    run(body())


def test_sync_client(server: Any) -> None:
    with switchboard.SyncClient(server.url, timeout=20, reconnect_first=0.05) as worker, switchboard.SyncClient(
        server.url, timeout=20
    ) as client:
        worker.serve("projects/sync", lambda method, params, who: {"method": method, "params": params})
        sub = client.subscribe("projects/sync")
        assert client.publish("projects/sync", {"n": 1}, retain=True) == 1
        assert client.publish("projects/sync", {"n": 2}) == 2
        first, second = next(sub), sub.get(timeout=10)
        assert isinstance(first, Event) and isinstance(second, Event)
        assert (first.offset, second.offset) == (1, 2)
        assert client.get_state("projects/sync").state == {"n": 1}
        assert client.call("projects/sync", "echo", [1, 2]) == {"method": "echo", "params": [1, 2]}
        with pytest.raises(switchboard.NoHandlerError):
            client.call("projects/none", "echo")
