"""The core reads a text request's fields back (replay asks it which chat a
recorded request was): the inverse of the body ``text_request`` writes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptalk_proto._wire import text_request
from gptalk_proto.cassette import text_request_fields


@pytest.mark.parametrize("prompt", ["hi", "", "\ud800 lone", '"quoted"\n日本語'])
def test_the_fields_text_request_writes_come_back(prompt: str) -> None:
    request = text_request("tok", prompt, model="gpt-4", now=1_700_000_000.0)
    assert text_request_fields(request.body) == (prompt, "gpt-4")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'{"model": "m"}',
        b'{"content": 3}',
        b"[" * 100_000,  # deep: no RecursionError escapes
        b"\xff\xfe",
    ],
)
def test_what_is_not_a_text_request_is_none(body: bytes) -> None:
    assert text_request_fields(body) is None


def test_a_missing_or_odd_model_is_empty() -> None:
    assert text_request_fields(json.dumps({"content": "x"}).encode()) == ("x", "")
    assert text_request_fields(json.dumps({"content": "x", "model": 5}).encode()) == ("x", "")


def original_text_body(prompt: str, model: str, user_agent: str, now: float) -> bytes:
    """The original client's text request body, as json.dumps writes it."""
    fields = {
        "content": prompt,
        "accept": "stream",
        "from": 1,
        "model": model,
        "is_mobile": 0,
        "user_agent": user_agent,
        "is_open_ctx": 0,
        "prompt": "",
        "roid": 111,
        "temperature": 0,
        "ctx_msg_count": 3,
        "created_at": int(now),
    }
    return json.dumps(fields).encode("ascii")


@settings(max_examples=300, deadline=None)
@given(st.text(), st.text(), st.text(), st.floats(0, 2**40))
def test_the_body_is_json_dumps_of_the_original_fields(
    prompt: str, model: str, user_agent: str, now: float
) -> None:
    # text_request writes the body by hand (cheaper): it must stay what
    # json.dumps writes for the original client's object, byte for byte.
    request = text_request("tok", prompt, model=model, now=now, user_agent=user_agent)
    assert request.body == original_text_body(prompt, model, user_agent, now)
