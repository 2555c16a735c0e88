"""The sessions shipped in ``cassettes/``, and how to record them again.

Each scenario is recorded over TCP from the reference server (with the
scenario's faults); ``gptalk cassette rerecord`` re-records them all.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from gptalk_proto.server import ReplyGenerator, default_reply, sized_reply

from ._cassettes import save_cassette
from ._session import ChatResult, record_session

__all__ = ["SCENARIOS", "Scenario", "record_scenario"]


class Scenario(NamedTuple):
    """One recorded session: its chats, and what the server did."""

    description: str
    prompts: tuple[str, ...]
    faults: tuple[str, ...] = ()
    reply: ReplyGenerator = default_reply
    #: The error type the session's chats end with, by name ("" for none).
    expect: tuple[str, ...] = ()


SCENARIOS: dict[str, Scenario] = {
    "plain-chat": Scenario("One chat: login, text, stream.", ("Hello, how are you?",)),
    "seven-chats": Scenario(
        "Seven chats on one client: a token serves five, so the sixth logs in again.",
        tuple(f"Question number {n}" for n in range(1, 8)),
    ),
    "expired-token": Scenario(
        "The service says the token expired; the client logs in again and retries.",
        ("First question", "Second question"),
        faults=("envelope=expired@text#2",),
    ),
    "quota-then-retry": Scenario(
        "A quota envelope on the text request; one new login, then success.",
        ("Is there quota left?",),
        faults=("envelope=quota@text#1",),
    ),
    "503-then-retry": Scenario(
        "HTTP 503 on the text request, then healthy; the client retries.",
        ("Are you there?",),
        faults=("status=503@text#1",),
    ),
    "cut-mid-event": Scenario(
        "The stream breaks in the middle of its fourth event.",
        ("Tell me a long story",),
        faults=("cut=3",),
        expect=("StreamInterrupted",),
    ),
    "crlf-keepalive": Scenario(
        "CRLF line ends and keep-alive comments between events.",
        ("Line ends, please",),
        faults=("newline=crlf", "keepalive=2"),
    ),
    "rewrite": Scenario(
        "The service rewrites earlier text from the fourth event on.",
        ("Change your mind",),
        faults=("rewrite=4",),
    ),
    "long-reply": Scenario(
        "A reply of 6000 characters in 100 events (over 200 KB of stream).",
        ("Write a lot",),
        reply=sized_reply(6000, 100),
    ),
}


async def record_scenario(name: str, directory: Path) -> tuple[Path, list[ChatResult]]:
    """Record scenario ``name`` into ``directory/name.json``."""
    scenario = SCENARIOS[name]
    cassette, results = await record_session(
        scenario.prompts, faults=scenario.faults, reply=scenario.reply
    )
    cassette = type(cassette)(
        interactions=cassette.interactions,
        recorded_at=cassette.recorded_at,
        origin=cassette.origin,
        redacted=cassette.redacted,
        generator=cassette.generator,
        meta={
            "scenario": name,
            "description": scenario.description,
            "faults": list(scenario.faults),
        },
    )
    endings = tuple(type(r.error).__name__ for r in results if r.error is not None)
    if endings != scenario.expect:
        raise RuntimeError(
            f"scenario {name}: expected {scenario.expect}, the chats ended {endings}"
        )
    path = directory / f"{name}.json"
    save_cassette(path, cassette)
    return path, results
