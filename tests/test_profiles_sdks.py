"""The official OpenAI and Anthropic SDKs, recorded through the proxy and
replayed by the replay server under the ``generic`` profile.

The upstream is a small compatible server (tests/llm_app.py) on loopback,
stopped before the replay: what the SDKs parse the second time comes from
the cassette alone.
"""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

import gptalk_proto as g
from gptalk_proto.cassette import Cassette, lint, verify_rechunked
from gptalk_transports import serve_cassettes_in_thread

from . import llm_app
from .sdk_cases import OTHER_KEY, SDKS, record_sdk, stream_sdk

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module", params=list(SDKS))
def recorded(request: pytest.FixtureRequest) -> tuple[str, Cassette, list[dict[str, object]]]:
    sdk: str = request.param
    cassette, chunks = record_sdk(sdk)
    return sdk, cassette, chunks


def test_the_recording_holds_the_stream_and_no_key(
    recorded: tuple[str, Cassette, list[dict[str, object]]],
) -> None:
    _, cassette, chunks = recorded
    assert cassette.profile == "generic"
    assert len(cassette.interactions) == 1
    (item,) = cassette.interactions
    # One recorded read per event the server wrote (the tee never buffers),
    # and the events parsed beside them.
    assert len(item.response.chunks) > len(llm_app.PIECES)
    assert len(item.response.events) >= len(llm_app.PIECES)
    text = cassette.dumps()
    assert llm_app.API_KEY not in text
    for piece in (llm_app.API_KEY[:8], llm_app.API_KEY[-8:]):
        assert piece not in text
    assert lint(cassette) == []
    assert len(chunks) >= len(llm_app.PIECES)
    assert Cassette.loads(text) == cassette


def test_the_sdk_parses_the_same_chunks_from_the_replay_server_with_another_key(
    recorded: tuple[str, Cassette, list[dict[str, object]]],
) -> None:
    sdk, cassette, chunks = recorded
    # The upstream was stopped when record_sdk returned.
    with serve_cassettes_in_thread([cassette]) as url:
        assert stream_sdk(sdk, url, key=OTHER_KEY) == chunks


def test_another_request_gets_a_409_not_the_recording(
    recorded: tuple[str, Cassette, list[dict[str, object]]],
) -> None:
    sdk, cassette, _ = recorded
    errors = (openai.APIStatusError, anthropic.APIStatusError)
    mismatches: list[str] = []
    with (
        serve_cassettes_in_thread(
            [cassette], check_played=False, on_mismatch=mismatches.append
        ) as url,
        pytest.raises(errors) as info,
    ):
        stream_sdk(sdk, url, OTHER_KEY, prompt="something else")
    error = info.value
    assert isinstance(error, errors)
    assert error.status_code == g.cassette.MISMATCH_STATUS
    assert any("body.messages" in text for text in mismatches), mismatches


def test_volatile_fields_are_not_matched(
    recorded: tuple[str, Cassette, list[dict[str, object]]],
) -> None:
    _, cassette, _ = recorded
    replayer = g.cassette.Replayer(cassette)
    request = cassette.interactions[0].request
    body = json.loads(request.body)  # a copy: request.json() is the cassette's own
    body["model"] = "another-model"
    sent = (request.method, request.target, list(request.headers))
    with pytest.raises(g.cassette.CassetteMismatch, match=r"body\.model"):
        replayer.match(*sent, body=json.dumps(body).encode())
    lenient = g.cassette.Replayer(cassette, g.cassette.GENERIC.with_volatile(["model"]))
    assert lenient.match(*sent, body=json.dumps(body).encode()) is not None


def test_every_split_point_reads_the_same(
    recorded: tuple[str, Cassette, list[dict[str, object]]],
) -> None:
    _, cassette, _ = recorded
    report = verify_rechunked(cassette)
    wire = cassette.interactions[0].response.wire
    assert report.splits == len(wire) - 1  # small: every split point
    assert report.crlf_splits >= wire.count(b"\r\n")
    assert report.utf8_splits > 0  # inside the non-ASCII and the emoji
