"""Fixtures: a real `switchboard serve` on a free loopback port, and a TCP proxy that can cut every connection.

The binary comes from SWITCHBOARD_BIN (default: target/debug/switchboard at the repository's root).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator, List, Optional, Set

import pytest

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(os.environ.get("SWITCHBOARD_BIN", ROOT / "target" / "debug" / "switchboard"))


class Server:
    """A running `switchboard serve`; `url` is its native WebSocket endpoint."""

    def __init__(self, *args: str, bind: str = "127.0.0.1:0") -> None:
        if not BIN.exists():
            raise RuntimeError(f"no switchboard binary at {BIN}: build it (cargo build --bin switchboard)")
        self.args = args
        self._out = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [str(BIN), "serve", "--bind", bind, *args],
            stdout=self._out,
            stderr=subprocess.DEVNULL,
        )
        self.addr = self._wait_for_address()
        self.url = f"ws://{self.addr}/api/ws"

    def _wait_for_address(self) -> str:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            self._out.seek(0)
            for line in self._out.read().decode().splitlines():
                if line.startswith("listening on "):
                    return line[len("listening on ") :].strip()
            if self.proc.poll() is not None:
                raise RuntimeError(f"switchboard serve exited with {self.proc.returncode}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("switchboard serve did not print its address")

    def restart(self) -> None:
        """Stops the server and starts it again on the same address with the same flags."""
        self.stop()
        again = Server(*self.args, bind=self.addr)
        self.proc, self._out = again.proc, again._out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.stop()


@pytest.fixture
def make_server() -> Iterator[object]:
    """Starts servers with extra flags; stops them all at the end."""
    started: List[Server] = []

    def make(*args: str) -> Server:
        s = Server(*args)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


class CuttingProxy:
    """A loopback TCP proxy to `target`; `cut()` drops every connection through it at once (both directions, no
    WebSocket close frame), as a failing network or a restarted load balancer would."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self._target = (host, int(port))
        self._server: Optional[asyncio.base_events.Server] = None
        self._writers: Set[asyncio.StreamWriter] = set()
        self.connections = 0
        self.holding = False
        self.url = ""

    async def start(self) -> "CuttingProxy":
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/api/ws"
        return self

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.holding:
            # Down: the connection is dropped before it reaches the server, so the client keeps retrying.
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while True:
                    data = await src.read(65536)
                    if not data:
                        break
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.discard(writer)
        self._writers.discard(up_writer)

    def hold(self) -> None:
        """From now on, new connections are dropped at once (the server looks down) until `release()`."""
        self.holding = True

    def release(self) -> None:
        self.holding = False

    def cut(self) -> int:
        """Drops every open connection; returns how many sockets were cut."""
        cut = 0
        for w in list(self._writers):
            transport = w.transport
            if transport is not None and not transport.is_closing():
                transport.abort()
                cut += 1
        self._writers.clear()
        return cut

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
