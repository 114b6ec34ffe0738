"""The values the client hands the application."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional


@dataclass(frozen=True)
class Event:
    """One event of a subscribed channel. Per channel and epoch, offsets strictly increase and none repeats,
    across reconnects too."""

    channel: str
    epoch: str
    offset: int
    event: Any
    """The published JSON value (usually a dict)."""


@dataclass(frozen=True)
class Resync:
    """Some events of the channel were lost to this client (the server could not replay the gap, or the channel's
    history restarted in a new epoch). Fetch the state with ``get_state`` to catch up; live events keep coming."""

    channel: str


@dataclass(frozen=True)
class State:
    """A channel's retained state, from ``get_state``: ``state`` is ``None`` when nothing was retained."""

    channel: str
    epoch: str
    offset: int
    state: Any


@dataclass(frozen=True)
class Caller:
    """Who made a routed call: the calling connection's ``app_id`` and, when the server said, the ``sub`` of its
    token or the name of its API key."""

    app_id: str
    sub: Optional[str] = None
    key: Optional[str] = None
