"""The clients against a GPTalk server this project did not write.

The server (``tests/foreign_app.py``) is starlette with sse-starlette under
uvicorn: other people's HTTP and SSE code, in two streaming variants (CRLF
with interleaved pings, and hand-written CR-only bytes split mid-character).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gptalk_transports import AsyncClient, Client

from . import clients
from .foreign_app import VARIANTS, AppState, reply_pieces, run_in_thread


@pytest.fixture(scope="module")
def foreign() -> Iterator[tuple[str, AppState]]:
    """One uvicorn server for the module (started before ``no_leaks`` looks)."""
    state = AppState()
    with run_in_thread(state) as url:
        yield url, state


@pytest.fixture(params=VARIANTS)
def app(foreign: tuple[str, AppState], request: pytest.FixtureRequest) -> Iterator[AppState]:
    """The app's state, fresh, streaming in one variant."""
    _, state = foreign
    state.reset(variant=request.param)
    yield state
    assert state.problems == []


@pytest.fixture
def url(foreign: tuple[str, AppState]) -> str:
    return foreign[0]


@pytest.mark.parametrize("kind", clients.KINDS)
def test_full_chat(kind: str, url: str, app: AppState, no_leaks: None) -> None:
    prompt = "Hello from elsewhere"
    outcome = clients.stream(kind, url, prompt)
    assert outcome.text == "".join(reply_pieces(prompt))
    assert outcome.deltas == reply_pieces(prompt)
    assert outcome.retries == 0
    assert outcome.connections == 1  # uvicorn keeps the connection alive
    assert (app.logins, app.texts, app.streams, app.refusals) == (1, 1, 1, 0)
    if app.variant == "sse":
        assert app.pings >= len(reply_pieces(prompt))


@pytest.mark.parametrize("kind", clients.KINDS)
def test_seven_chats_relogin_once_after_the_fifth(
    kind: str, url: str, app: AppState, no_leaks: None
) -> None:
    prompts = [f"chat number {n}" for n in range(7)]
    if kind == "blocking":
        with Client(url) as client:
            replies = [client.chat(prompt) for prompt in prompts]
            logins = client.credentials.logins
    else:

        async def main(backend: str) -> tuple[list[str], int]:
            async with AsyncClient(url, backend=backend) as client:
                return [await client.chat(p) for p in prompts], client.credentials.logins

        replies, logins = clients.run_async(kind, main)
    assert replies == ["".join(reply_pieces(p)) for p in prompts]
    assert logins == 2
    assert (app.logins, app.texts, app.streams, app.refusals) == (2, 7, 7, 0)


@pytest.mark.parametrize("kind", clients.KINDS)
def test_quota_envelope_makes_one_relogin(
    kind: str, url: str, app: AppState, no_leaks: None
) -> None:
    app.refuse_texts = {1}
    prompt = "refused once"
    outcome = clients.stream(kind, url, prompt)
    assert outcome.text == "".join(reply_pieces(prompt))
    assert outcome.deltas == reply_pieces(prompt)
    assert outcome.retries == 1
    assert (app.logins, app.texts, app.streams, app.refusals) == (2, 2, 1, 1)
