"""The client's states and its transition table.

One chat is three HTTP exchanges (login when the credentials need it, text,
stream).  The table below is the whole of what the machine may do: a
``(state, input)`` pair not in it is caller misuse, and moves the machine to
``ERROR`` for good.  Where one input may lead to several states, the table
lists them all and the machine picks by what it saw (credentials usable or
not, ``[DONE]`` seen or not); the choke point checks the pick is listed.

Any input that carries the peer's bytes may instead end in a
``RemoteProtocolError`` or a service error; :meth:`StateMachine.fail` then
moves the machine to ``ERROR``, also for good.
"""

from __future__ import annotations

from enum import Enum

from ._errors import LocalProtocolError

__all__ = [
    "CLIENT_TRANSITIONS",
    "SEND_STATES",
    "ClientInput",
    "ClientState",
    "StateMachine",
    "state_diagram",
]


class ClientState(Enum):
    """Where one chat stands."""

    # Members are singletons: hashing by identity is exact, and runs in C
    # (Enum's own __hash__ is Python code, and the choke point hashes on
    # every chunk of a stream).
    __hash__ = object.__hash__

    START = "start"  #: nothing sent; the first request is login or text
    LOGIN_SENT = "login-sent"  #: login request out, waiting for its response head
    LOGIN_BODY = "login-body"  #: reading the login response body
    LOGGED_IN = "logged-in"  #: a fresh token is ours; the text request is next
    TEXT_SENT = "text-sent"
    TEXT_BODY = "text-body"
    TEXT_DONE = "text-done"  #: a stream token is ours; the stream request is next
    STREAM_SENT = "stream-sent"
    STREAMING = "streaming"  #: reading SSE events
    DRAINING = "draining"  #: [DONE] seen; reading the body's end
    DONE = "done"
    ERROR = "error"


class ClientInput(Enum):
    """What can happen to a chat: the caller's five calls."""

    __hash__ = object.__hash__

    SEND = "send"  #: next_request() / send()
    RESPONSE = "response"  #: a final response head arrived
    DATA = "data"  #: response body bytes arrived
    END = "end"  #: the response body ended
    ABORT = "abort"  #: the connection broke while a response was due


S = ClientState
I = ClientInput  # noqa: E741

CLIENT_TRANSITIONS: dict[tuple[ClientState, ClientInput], frozenset[ClientState]] = {
    (S.START, I.SEND): frozenset({S.LOGIN_SENT, S.TEXT_SENT}),
    (S.LOGIN_SENT, I.RESPONSE): frozenset({S.LOGIN_BODY}),
    (S.LOGIN_BODY, I.DATA): frozenset({S.LOGIN_BODY}),
    (S.LOGIN_BODY, I.END): frozenset({S.LOGGED_IN}),
    (S.LOGGED_IN, I.SEND): frozenset({S.TEXT_SENT}),
    (S.TEXT_SENT, I.RESPONSE): frozenset({S.TEXT_BODY}),
    (S.TEXT_BODY, I.DATA): frozenset({S.TEXT_BODY}),
    (S.TEXT_BODY, I.END): frozenset({S.TEXT_DONE}),
    (S.TEXT_DONE, I.SEND): frozenset({S.STREAM_SENT}),
    (S.STREAM_SENT, I.RESPONSE): frozenset({S.STREAMING}),
    (S.STREAMING, I.DATA): frozenset({S.STREAMING, S.DRAINING}),
    # The body ending before [DONE] is legal input that always fails: the
    # machine raises StreamInterrupted and lands in ERROR.
    (S.STREAMING, I.END): frozenset({S.ERROR}),
    (S.DRAINING, I.DATA): frozenset({S.DRAINING}),
    (S.DRAINING, I.END): frozenset({S.DONE}),
    # The connection broke while a response was due: a typed error, except
    # after [DONE], when the reply is complete whatever the body's end did.
    (S.LOGIN_SENT, I.ABORT): frozenset({S.ERROR}),
    (S.LOGIN_BODY, I.ABORT): frozenset({S.ERROR}),
    (S.TEXT_SENT, I.ABORT): frozenset({S.ERROR}),
    (S.TEXT_BODY, I.ABORT): frozenset({S.ERROR}),
    (S.STREAM_SENT, I.ABORT): frozenset({S.ERROR}),
    (S.STREAMING, I.ABORT): frozenset({S.ERROR}),
    (S.DRAINING, I.ABORT): frozenset({S.DONE}),
}
"""Every legal ``(state, input)`` pair and the states it may lead to."""

#: States in which the chat's next step is a request of its own.
SEND_STATES = frozenset(state for (state, event) in CLIENT_TRANSITIONS if event is I.SEND)

del S, I


def state_diagram() -> str:
    """The client machine as a Mermaid ``stateDiagram-v2``, drawn from
    :data:`CLIENT_TRANSITIONS` (the README shows it; a test keeps it in sync).

    Inputs that lead from one state to the same other state share an arrow;
    the failures :meth:`StateMachine.fail` records (a peer or service error
    on any input carrying the peer's bytes) are a note, not arrows.
    """
    order = list(ClientState)
    edges: dict[tuple[ClientState, ClientState], list[str]] = {}
    for (state, event), targets in CLIENT_TRANSITIONS.items():
        for target in sorted(targets, key=order.index):
            edges.setdefault((state, target), []).append(event.value)
    lines = ["stateDiagram-v2", f"    [*] --> {ClientState.START.name}"]
    for (state, target), events in sorted(
        edges.items(), key=lambda item: (order.index(item[0][0]), order.index(item[0][1]))
    ):
        lines.append(f"    {state.name} --> {target.name}: {', '.join(events)}")
    lines += [
        f"    {ClientState.DONE.name} --> [*]",
        f"    note right of {ClientState.ERROR.name}",
        "        also reached from any state by a peer",
        "        or service error (for good)",
        "    end note",
    ]
    return "\n".join(lines)


class StateMachine:
    """The one choke point through which a client's state changes."""

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = ClientState.START

    def check(self, event: ClientInput) -> frozenset[ClientState]:
        """Return where ``event`` may lead from here, or fail for good."""
        targets = CLIENT_TRANSITIONS.get((self.state, event))
        if targets is None:
            state, self.state = self.state, ClientState.ERROR
            raise LocalProtocolError(
                f"cannot take {event.value!r} in state {state.value!r}"
                + (" (the chat already failed)" if state is ClientState.ERROR else "")
            )
        return targets

    def move(self, event: ClientInput, target: ClientState) -> None:
        """Take ``event`` to ``target``; a target not in the table is a bug."""
        # The table looked up here rather than through check(): the same
        # test, one call fewer on every move (a chat moves a dozen times).
        targets = CLIENT_TRANSITIONS.get((self.state, event))
        if targets is None or target not in targets:
            self.check(event)  # no transition at all: check() raises its own error
            self.state = ClientState.ERROR
            raise LocalProtocolError(f"no transition {event.value!r} to {target.value!r}")
        self.state = target

    def fail(self) -> None:
        """Move to ``ERROR`` (the peer broke the protocol, or the service refused)."""
        self.state = ClientState.ERROR
