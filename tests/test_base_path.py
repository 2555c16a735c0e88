"""A service mounted under a path prefix: the URL's path is its base path.

The peer is the foreign starlette app (``tests/foreign_app.py``) mounted with
starlette's ``Mount`` under ``/gptalk/v1``, so only prefixed requests reach it
and anything else is starlette's own 404.
"""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest

import gptalk_proto as g
from gptalk_transports import Client, Origin, record_session

from . import clients
from .console import gptalk
from .foreign_app import AppState, reply_pieces, run_in_thread

PREFIX = "/gptalk/v1"


@pytest.fixture(scope="module")
def mounted() -> Iterator[tuple[str, AppState]]:
    """The app under PREFIX; yields the server's root URL."""
    state = AppState()
    with run_in_thread(state, prefix=PREFIX) as root:
        yield root, state


@pytest.fixture
def app(mounted: tuple[str, AppState]) -> Iterator[AppState]:
    _, state = mounted
    state.reset(variant="raw")
    yield state
    assert state.problems == []


@pytest.mark.parametrize("slash", ["", "/"])
@pytest.mark.parametrize("kind", clients.KINDS)
def test_every_request_goes_under_the_base_path(
    kind: str, slash: str, mounted: tuple[str, AppState], app: AppState, no_leaks: None
) -> None:
    root, _ = mounted
    prompt = "Hello from under a prefix"
    outcome = clients.stream(kind, root + PREFIX + slash, prompt)
    assert outcome.text == "".join(reply_pieces(prompt))
    assert (app.logins, app.texts, app.streams, app.refusals) == (1, 1, 1, 0)


def test_the_root_is_not_the_service(mounted: tuple[str, AppState], app: AppState) -> None:
    """Without the prefix the mount answers 404: the base path is what made
    the chat above work."""
    root, _ = mounted
    with Client(root) as client, pytest.raises(g.HTTPStatusError) as caught:
        client.chat("hi")
    assert caught.value.status == 404
    assert caught.value.url == root + g.LOGIN_PATH
    assert app.logins == 0


def test_an_error_names_the_whole_url(mounted: tuple[str, AppState], app: AppState) -> None:
    root, _ = mounted
    with Client(root + "/elsewhere/") as client, pytest.raises(g.HTTPStatusError) as caught:
        client.chat("hi")
    assert caught.value.url == root + "/elsewhere" + g.LOGIN_PATH


def test_the_cli_chats_under_the_base_path(mounted: tuple[str, AppState], app: AppState) -> None:
    root, _ = mounted
    done = gptalk("chat", "--url", root + PREFIX, "hi")
    assert done.returncode == 0, done.stderr
    # The terminal gets U+2028 (a line separator, not printable) escaped.
    shown = "".join(reply_pieces("hi")).replace("\u2028", "\\u2028")
    assert done.stdout == shown + "\n"
    assert app.streams == 1


@pytest.mark.parametrize(
    ("url", "path", "shown"),
    [
        ("http://h:8080/prefix", "/prefix", "http://h:8080/prefix"),
        ("http://h/prefix/", "/prefix", "http://h/prefix"),
        ("http://h/", "", "http://h"),
        ("http://h", "", "http://h"),
        ("https://h/a b/\u00fc", "/a%20b/%C3%BC", "https://h/a%20b/%C3%BC"),
        ("http://h/p%2Fq/100%", "/p%2Fq/100%25", "http://h/p%2Fq/100%25"),
    ],
)
def test_the_base_path_is_a_valid_target_prefix(url: str, path: str, shown: str) -> None:
    origin = Origin.parse(url)
    assert origin.path == path
    assert str(origin) == shown
    # The core takes it as the prefix of every request target.
    chat = g.Chat("hi", credentials=g.Credentials(), fingerprint="0" * 32)
    g.ClientConnection(chat, host=origin.host_header, target_prefix=origin.path)


def test_recording_under_a_base_path_is_refused_before_connecting() -> None:
    # Port 1 on loopback: nothing listens; the refusal comes first.
    with pytest.raises(g.LocalProtocolError, match="base path"):
        anyio.run(lambda: record_session(["hi"], url="http://127.0.0.1:1/prefix"))
