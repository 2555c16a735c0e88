"""Run a client machine against a server machine in memory.

The pair helper of h11's own tests, for GPTalk: no sockets, no threads, no
clock.  Pauses the server asks for advance a fake clock instead of sleeping,
so a test of timing faults runs instantly.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

from .._chat import Chat
from .._connection import ClientConnection
from .._errors import LocalProtocolError
from .._events import ChatDone, ChatEvent, ReconnectNeeded
from .._util import NEED_DATA, PAUSED, SEND_REQUEST
from ..server._connection import BadRequest, Close, RequestReceived, Send, ServerConnection
from ..server._service import Pause, Service

__all__ = ["MemoryPair", "run_chat"]


class MemoryPair:
    """A :class:`ClientConnection` wired to a :class:`ServerConnection`.

    Args:
        chat: the client machine.
        service: the server's shared state.
        now: the fake clock's start (unix seconds).
        splitter: cuts each server write into the pieces the client receives
            (default: as written).  See :func:`random_splitter`.
        max_pause: a drip or stall longer than this many fake seconds in total
            ends the exchange as if the client had timed out (raises
            ``TimeoutError``), so an endless fault cannot hang a test.
    """

    def __init__(
        self,
        chat: Chat,
        service: Service,
        *,
        now: float = 1_700_000_000.0,
        host: str = "gptalk.test",
        splitter: Callable[[bytes], Iterator[bytes]] | None = None,
        max_pause: float = 60.0,
    ) -> None:
        self.client = ClientConnection(chat, host=host)
        self.service = service
        self.server = ServerConnection(service)
        self.now = now
        self.connections = 1
        self._split = splitter or (lambda data: iter((data,)))
        self._max_pause = max_pause

    def events(self) -> Iterator[ChatEvent]:
        """Drive the chat to its end, yielding its events (errors propagate)."""
        client = self.client
        done = False
        while True:
            event = client.next_event()
            if event is SEND_REQUEST:
                self._exchange(client.send(now=self.now))
            elif event is NEED_DATA:
                if done:
                    return  # [DONE] came but the body never ended: not reusable
                raise LocalProtocolError("the client waits for bytes the server never sent")
            elif event is PAUSED:
                return
            elif isinstance(event, ReconnectNeeded):
                self.server = ServerConnection(self.service)
                self.connections += 1
                yield event
            else:
                # After ChatDone, keep reading to the body's end so the
                # connection is left reusable, as a real driver does.
                done = done or isinstance(event, ChatDone)
                yield event

    def _exchange(self, request: bytes) -> None:
        server = self.server
        server.receive_data(request)
        paused = 0.0
        while True:
            event = server.next_event()
            if event is NEED_DATA or event is PAUSED:
                return
            assert isinstance(event, (RequestReceived, BadRequest))
            for action in server.respond(event, now=self.now):
                if isinstance(action, Send):
                    for piece in self._split(action.data):
                        self.client.receive_data(piece)
                elif isinstance(action, Pause):
                    self.now += action.seconds
                    paused += action.seconds
                    if paused > self._max_pause:
                        raise TimeoutError(f"the server paused {paused:g} fake seconds")
                elif isinstance(action, Close):
                    self.client.receive_data(b"")
                    return


def random_splitter(seed: int = 0, max_piece: int = 7) -> Callable[[bytes], Iterator[bytes]]:
    """A splitter that cuts every write at seeded random points (pieces of 1 to
    ``max_piece`` bytes), so parsers meet every boundary."""
    rng = random.Random(seed)

    def split(data: bytes) -> Iterator[bytes]:
        start = 0
        while start < len(data):
            end = start + rng.randint(1, max_piece)
            yield data[start:end]
            start = end

    return split


def run_chat(chat: Chat, service: Service, **kwargs: object) -> list[ChatEvent]:
    """Run ``chat`` against ``service`` in memory; return all its events."""
    return list(MemoryPair(chat, service, **kwargs).events())  # type: ignore[arg-type]
