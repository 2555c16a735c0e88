"""The requests' headers, built from kept fixed parts (``_wire._fixed_headers``),
equal the ones built field by field, the way they were before, for every
user agent, origin and extra headers a client can send."""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import quote

from hypothesis import given, settings
from hypothesis import strategies as st

import gptalk_proto as g
from gptalk_proto import _wire

from .test_request_bytes import raw_value as value
from .test_request_bytes import token as name
from .test_text_request_fields import original_text_body

NOW = 1_700_000_000.0

fingerprint = st.text("0123456789abcdef", min_size=32, max_size=32)


def slow_headers(
    now: float, user_agent: str, origin: str, extra: Iterable[tuple[str, str]]
) -> list[tuple[str, str]]:
    # The headers of every request, listed one by one (the code before).
    headers = [
        ("accept", "*/*"),
        ("content-type", "application/json"),
        ("origin", origin),
        ("user-agent", user_agent),
        ("x-auth-appid", _wire.APP_ID),
        ("x-auth-openid", ""),
        ("x-auth-platform", ""),
        ("x-auth-timestamp", str(int(now))),
    ]
    headers.extend(extra)
    return headers


@settings(max_examples=300, deadline=None)
@given(
    user_agent=value,
    origin=value,
    extra=st.lists(st.tuples(name, value), max_size=4),
    now=st.floats(min_value=0, max_value=4e9),
    token=value.filter(bool),
    prompt=st.text(max_size=30),
    fp=fingerprint,
)
def test_every_request_has_the_headers_built_one_by_one(
    *,
    user_agent: str,
    origin: str,
    extra: list[tuple[str, str]],
    now: float,
    token: str,
    prompt: str,
    fp: str,
) -> None:
    settings_ = {"now": now, "user_agent": user_agent, "origin": origin, "extra_headers": extra}
    # Twice each: built, then from the kept fixed parts.
    for _ in range(2):
        login = _wire.login_request(fp, **settings_)  # type: ignore[arg-type]
        assert login.headers == tuple(slow_headers(now, user_agent, origin, extra))
        assert json.loads(login.body) == {"fingerprint": fp, "platform": "fingerprint"}

        text = _wire.text_request(token, prompt, model="m", **settings_)  # type: ignore[arg-type]
        expected = slow_headers(now, user_agent, origin, extra)
        expected.append(("authorization", f"Bearer {token}"))
        assert text.headers == tuple(expected)
        assert text.body == original_text_body(prompt, "m", user_agent, now)

        stream = _wire.stream_request(token, **settings_)  # type: ignore[arg-type]
        expected = slow_headers(now, user_agent, origin, extra)
        expected[0] = ("accept", "text/event-stream")
        del expected[1]
        assert stream.headers == tuple(expected)
        assert stream.target == f"{_wire.STREAM_PATH}?token={quote(token, safe='')}"
    info = _wire._fixed_headers.cache_info()
    assert info.currsize <= _wire.MAX_HEADER_SETTINGS


def test_a_chats_requests_carry_its_settings_and_extra_headers() -> None:
    # Through the Chat, as the clients make them (lowercased extra names).
    chat = g.Chat(
        "hi",
        credentials=g.Credentials(),
        fingerprint="a" * 32,
        user_agent="UA/1",
        origin="https://o.example",
        extra_headers=[("X-One", "1"), ("x-two", "")],
    )
    login = chat.next_request(NOW)
    assert login.headers == tuple(
        slow_headers(NOW, "UA/1", "https://o.example", [("x-one", "1"), ("x-two", "")])
    )
