#!/usr/bin/env python3
"""Interop test: clients this project did not write (Python's `websockets`) speak the project-stream and
channel-payload dialects, and the native one, against a running `switchboard serve`.

Usage: interop.py HOST:PORT. Exits non-zero on the first failed check; prints `N passed, 0 failed` at the end.
"""
import asyncio
import json
import sys

import websockets

ADDR = sys.argv[1]
TIMEOUT = 10
checks = 0


def check(cond, what):
    global checks
    if not cond:
        raise AssertionError(what)
    checks += 1


async def recv_json(ws):
    return json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))


async def recv_until(ws, pred):
    while True:
        msg = await recv_json(ws)
        if pred(msg):
            return msg


async def native(ws, type_, data, mid):
    await ws.send(json.dumps({"type": type_, "message_id": mid, "data": data}))
    return await recv_until(ws, lambda m: m.get("message_id") == mid)


async def project_stream():
    async with websockets.connect(f"ws://{ADDR}/api/v1/ws/projects/p1/stream") as dash, \
            websockets.connect(f"ws://{ADDR}/api/ws") as backend:
        hello = await recv_json(dash)
        check(hello["event_type"] == "connected" and hello["project_id"] == "p1", f"greeting {hello}")
        check(hello["timestamp"].endswith("Z"), "ISO timestamp")
        greeting = await recv_json(backend)
        check(greeting["type"] == "connected", "native greeting")

        served = await native(backend, "serve", {"channel": "projects/p1"}, "s1")
        check(served["type"] == "serve_res", f"serve {served}")
        event = {"event_type": "progress_update", "data": {"stage": "train", "progress": 0.5}}
        pub = await native(backend, "publish", {"channel": "projects/p1", "event": event, "retain": True}, "p1")
        check(pub["type"] == "publish_res" and pub["data"]["offset"] == 1, f"publish {pub}")

        got = await recv_json(dash)
        check(got["event_type"] == "progress_update" and got["offset"] == 1, f"event {got}")
        check(got["data"] == {"stage": "train", "progress": 0.5}, "event data")

        await dash.send(json.dumps({"type": "ping"}))
        check((await recv_json(dash))["event_type"] == "pong", "pong")
        await dash.send(json.dumps({"type": "get_state"}))
        state = await recv_json(dash)
        check(state["event_type"] == "state" and state["offset"] == 1, f"state {state}")

        await dash.send(json.dumps({"type": "cancel"}))
        ack = await recv_json(dash)
        check(ack["event_type"] == "cancel_acknowledged", f"ack {ack}")
        call = await recv_until(backend, lambda m: m.get("type") == "server_request")
        check(call["data"]["request_type"] == "call" and call["data"]["method"] == "cancel", f"routed {call}")
        await backend.send(json.dumps({"type": "server_response", "message_id": call["message_id"],
                                       "data": {"result": {"cancelled": True}}}))

        await dash.send(json.dumps({"type": "dance"}))
        err = await recv_json(dash)
        check(err["event_type"] == "error" and err["data"]["recoverable"] is True, f"error {err}")

    # Resume after offset 0: the retained progress event is replayed.
    async with websockets.connect(f"ws://{ADDR}/api/v1/projects/p1/stream?since=0") as again:
        check((await recv_json(again))["event_type"] == "connected", "alias greeting")
        replay = await recv_json(again)
        check(replay["offset"] == 1 and replay["event_type"] == "progress_update", f"replay {replay}")


async def channel_payload():
    async with websockets.connect(f"ws://{ADDR}/ws") as chat, websockets.connect(f"ws://{ADDR}/ws") as bot:
        await chat.send(json.dumps({"channel": "subscription", "payload": {"action": "subscribe", "channel": "room/1"}}))
        sub = await recv_json(chat)
        check(sub == {"channel": "subscription", "payload": {"action": "subscribed", "channel": "room/1"}}, f"sub {sub}")
        update = {"type": "assistant_update", "status": "responding", "message": "Hel"}
        await bot.send(json.dumps({"channel": "room/1", "payload": update}))
        got = await recv_json(chat)
        check(got == {"channel": "room/1", "payload": update}, f"delivery {got}")
        await chat.send("not json")
        err = await recv_json(chat)
        check(err["channel"] == "error" and err["payload"]["status"] == "error", f"error {err}")
        check(isinstance(err["payload"]["timestamp"], float), "unix seconds float")
        # A WebSocket ping frame is answered with a pong frame (the waiter resolves only on the pong).
        await asyncio.wait_for(await chat.ping(), TIMEOUT)
        check(True, "ping answered")
        await chat.send(json.dumps({"channel": "subscription", "payload": {"action": "unsubscribe", "channel": "room/1"}}))
        unsub = await recv_json(chat)
        check(unsub["payload"]["action"] == "unsubscribed", f"unsub {unsub}")


async def main():
    await project_stream()
    await channel_payload()


try:
    asyncio.run(asyncio.wait_for(main(), 60))
except Exception as e:  # noqa: BLE001 - report any failure as a failed check
    print(f"interop: FAILED: {e!r}")
    print(f"{checks} passed, 1 failed")
    sys.exit(1)
print(f"{checks} passed, 0 failed")
