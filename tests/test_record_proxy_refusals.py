"""The recording proxy's refusals reach whoever runs it, as one line each.

A client refused by the proxy (``CONNECT``, a request that is not HTTP, too
many requests ahead) gets the reason in the body of the answer, but a client
may not show it: curl prints only "CONNECT tunnel failed, response 501".
The proxy's runner then saw nothing at all.  Each refusal now has a note,
for the servers' log (stderr from the CLI), up to MAX_NOTED_REFUSALS: the
client's bytes in it escaped and cut, and a flood of bad requests cannot
fill the runner's terminal.
"""

from __future__ import annotations

import signal

import gptalk_proto as g
import gptalk_proto.cassette
from gptalk_proto.cassette import MAX_NOTED_REFUSALS, ToClient
from gptalk_transports import serve_in_thread

from .console import listening
from .test_server_driver import blocking_exchange

CONNECT = b"CONNECT gptalk.net:443 HTTP/1.1\r\nHost: gptalk.net:443\r\n\r\n"


def _refused(proxy: g.cassette.ProxyRecorder, data: bytes) -> ToClient:
    [action] = proxy.connection().client_data(data, 0.0)
    assert isinstance(action, ToClient)
    assert action.close
    return action


def test_each_refusal_has_a_note_up_to_the_cap() -> None:
    proxy = g.cassette.ProxyRecorder("http://up.example", host="up.example", url="http://p:1")
    notes = [_refused(proxy, CONNECT).note for _ in range(MAX_NOTED_REFUSALS + 5)]
    first = notes[0]
    assert first.startswith("refused a request (501): ")
    assert "CONNECT" in first
    assert "http://p:1" in first
    assert notes[:MAX_NOTED_REFUSALS] == [first] * MAX_NOTED_REFUSALS
    assert notes[MAX_NOTED_REFUSALS] == "refused a request (501); further refusals are not noted"
    assert notes[MAX_NOTED_REFUSALS + 1 :] == [""] * 4
    # The clients' answers are unchanged by the cap.
    assert _refused(proxy, CONNECT).data == _refused(proxy, CONNECT).data


def test_a_hostile_request_line_is_noted_escaped_and_cut() -> None:
    proxy = g.cassette.ProxyRecorder("http://up.example", host="up.example")
    line = b"GET /\x1b[2J\xe2\x80\xae" + b"x" * 100_000 + b" HTTP/1.1\r\n\r\n"
    note = _refused(proxy, line).note
    assert note.startswith("refused a request (4")
    assert note.isprintable()  # no ESC, no U+202E, no line end
    assert len(note) < 1_000


def test_answers_that_are_not_refusals_have_no_note() -> None:
    proxy = g.cassette.ProxyRecorder("http://up.example", host="up.example")
    actions = proxy.connection().client_data(b"GET / HTTP/1.1\r\nHost: p\r\n\r\n", 0.0)
    assert actions
    assert all(getattr(action, "note", "") == "" for action in actions)


def test_the_cli_writes_a_refused_connect_on_stderr() -> None:
    with (
        serve_in_thread() as upstream,
        listening("record", "--listen", "--url", upstream, "-o", "unused.json") as (proc, url),
    ):
        assert blocking_exchange(url, CONNECT).startswith(b"HTTP/1.1 501 ")
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=15)
        assert proc.stderr is not None
        errors = proc.stderr.read()
    # Nothing went through: no cassette (exit 6), and the refusal said why.
    assert code == 6, errors
    lines = [line for line in errors.splitlines() if "refused a request" in line]
    assert len(lines) == 1, errors
    assert lines[0].startswith("gptalk: refused a request (501): ")
    assert url in lines[0]
