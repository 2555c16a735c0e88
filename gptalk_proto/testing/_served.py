"""Drive a server machine with a client's raw bytes.

The mirror of :func:`~gptalk_proto.testing.play_responses`: whatever bytes a
client sends (valid, hostile, arbitrary) go to a
:class:`~gptalk_proto.server.ServerConnection` read by read, then the client's end
of stream, and every request is answered as a driver would.  The fuzz
harness and the server properties use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

from .._util import NEED_DATA, PAUSED
from ..server._connection import Close, Send, ServerConnection
from ..server._service import Pause

__all__ = ["Served", "play_requests"]

#: Writes one response may take before it is called endless (a ``drip``
#: fault never ends; nothing else comes near this).
MAX_WRITES_PER_RESPONSE = 100_000

_STATUS_LINE = re.compile(rb"HTTP/1\.1 ([1-5][0-9][0-9]) [\x20-\x7e]*\r\n")


class Served(NamedTuple):
    """What a server machine answered a client's bytes.

    * ``responses``: the bytes of each response, in order.
    * ``statuses``: the status of each.
    * ``closed``: whether the server closed the connection itself (a
      ``Close`` action) rather than seeing the client's end of stream.
    """

    responses: list[bytes]
    statuses: list[int]
    closed: bool


def play_requests(
    conn: ServerConnection, chunks: Iterable[bytes], *, now: float = 1_700_000_000.0
) -> Served:
    """Feed ``chunks`` (the client's reads, in order; its end of stream
    after them) to ``conn`` and answer every request at time ``now``
    (pauses are not waited).

    Raises ``AssertionError`` when the machine breaks its contract: a
    response that does not start with a status line, one that never ends, or
    a machine still waiting for bytes after the client's end of stream.  Any
    other exception is the machine's own, and propagates.
    """
    responses: list[bytes] = []
    statuses: list[int] = []
    closed = False

    def drain(eof: bool) -> bool:
        """Answer what the bytes so far complete; True once the connection ends."""
        nonlocal closed
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                if eof:
                    raise AssertionError("the server machine waits for bytes after EOF")
                return False
            if event is PAUSED:
                return True
            out = bytearray()
            actions = conn.respond(event, now=now)
            for writes, action in enumerate(actions, 1):
                if writes > MAX_WRITES_PER_RESPONSE:
                    raise AssertionError("a response that never ends")
                if isinstance(action, Send):
                    out += action.data
                elif isinstance(action, Close):
                    closed = True
                    break
                elif not isinstance(action, Pause):  # pragma: no cover - closed union
                    raise AssertionError(f"unknown action {action!r}")
            if out:
                match = _STATUS_LINE.match(out)
                if match is None:
                    raise AssertionError(f"a response without a status line: {bytes(out[:60])!r}")
                responses.append(bytes(out))
                statuses.append(int(match[1]))
            elif not closed:
                raise AssertionError("a request answered with nothing, and no close")
            if closed:
                return True

    for chunk in chunks:
        conn.receive_data(chunk)
        if drain(eof=False):
            return Served(responses, statuses, closed)
    conn.receive_data(b"")
    drain(eof=True)
    return Served(responses, statuses, closed)
