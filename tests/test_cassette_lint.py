"""Lint: it flags what looks like a secret, passes every shipped cassette, and its command."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

import gptalk_proto as g
import gptalk_proto.cassette
from gptalk_transports._cassettes import load_cassette, save_cassette

from .console import gptalk
from .redaction_cases import json_response, response_from

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"
SHIPPED = sorted(p for p in CASSETTES.glob("*.json") if p.name != "cassette.schema.json")


def sse_response(*data: str) -> bytes:
    body = "".join(f"data: {line}\n\n" for line in data).encode()
    head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
    return (head + f"content-length: {len(body)}\r\n\r\n").encode() + body


# -- lint ---------------------------------------------------------------------------------

HEX = "3f6c0e1d9a8b7c6d5e4f30211203f4e5"
B64 = "Zm9vYmFyQmF6UXV4MTIzNDU2Nzg5MGFiY2RlZg"
JWT = (
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


def _plant_header(
    cassette: g.cassette.Cassette, step: int, name: str, value: str
) -> g.cassette.Cassette:
    items = list(cassette.interactions)
    request = items[step].request
    items[step] = replace(
        items[step], request=replace(request, headers=(*request.headers, (name, value)))
    )
    return replace(cassette, interactions=tuple(items))


def _plant_target(cassette: g.cassette.Cassette, step: int, target: str) -> g.cassette.Cassette:
    items = list(cassette.interactions)
    items[step] = replace(items[step], request=replace(items[step].request, target=target))
    return replace(cassette, interactions=tuple(items))


def _plant_body(cassette: g.cassette.Cassette, step: int, content: str) -> g.cassette.Cassette:
    items = list(cassette.interactions)
    request = items[step].request
    body = {**request.json(), "content": content}
    items[step] = replace(items[step], request=replace(request, body=json.dumps(body).encode()))
    return replace(cassette, interactions=tuple(items))


def _plant_stream(cassette: g.cassette.Cassette, step: int, content: str) -> g.cassette.Cassette:
    items = list(cassette.interactions)
    data = json.dumps({"content": content})
    wire = sse_response(json.dumps({"content": "Hi "}), data, "[DONE]")
    items[step] = replace(items[step], response=response_from("GET", [(1.0, wire)]))
    return replace(cassette, interactions=tuple(items))


def _plant_response_header(
    cassette: g.cassette.Cassette, step: int, line: str
) -> g.cassette.Cassette:
    items = list(cassette.interactions)
    wire = json_response({"code": 0, "msg": "ok", "data": {"token": "x"}}, line)
    items[step] = replace(items[step], response=response_from("POST", [(1.0, wire)]))
    return replace(cassette, interactions=tuple(items))


PLANTS: dict[str, tuple[Callable[[g.cassette.Cassette], g.cassette.Cassette], str]] = {
    "hex-in-header": (
        lambda c: _plant_header(c, 0, "x-trace", HEX),
        "interactions[0].request.headers[10] (x-trace): a hex run of 32 characters",
    ),
    "hex-in-target": (
        lambda c: _plant_target(c, 2, f"/api/chatgpt/chatapi/stream?token={HEX}"),
        "interactions[2].request.target: a hex run of 32 characters",
    ),
    "hex-in-sse-data": (
        lambda c: _plant_stream(c, 2, f"the key is {HEX}"),
        "interactions[2].events[1]: a hex run of 32 characters",
    ),
    "base64-in-body": (
        lambda c: _plant_body(c, 1, f"here: {B64}"),
        f"interactions[1].request.body: a base64 run of {len(B64)} characters",
    ),
    "base64-in-header": (
        lambda c: _plant_header(c, 1, "x-api-key", B64),
        f"interactions[1].request.headers[11] (x-api-key): a base64 run of {len(B64)}",
    ),
    "base64-in-sse-data": (
        lambda c: _plant_stream(c, 2, B64),
        f"interactions[2].chunks: a base64 run of {len(B64)} characters",
    ),
    "jwt-in-body": (
        lambda c: _plant_body(c, 1, JWT),
        "interactions[1].request.body: a JWT",
    ),
    "jwt-in-target": (
        lambda c: _plant_target(c, 2, f"/api/chatgpt/chatapi/stream?token={JWT}"),
        "interactions[2].request.target: a JWT",
    ),
    "jwt-in-sse-data": (
        lambda c: _plant_stream(c, 2, f"token {JWT} ok"),
        "interactions[2].events[1]: a JWT",
    ),
    "bearer-in-header": (
        lambda c: _plant_header(c, 2, "authorization", "Bearer abc"),
        "interactions[2].request.headers[8] (authorization): a bearer or basic credential",
    ),
    "bearer-in-body": (
        lambda c: _plant_body(c, 1, "send Bearer abc please"),
        "interactions[1].request.body: a bearer or basic credential",
    ),
    "bearer-in-sse-data": (
        lambda c: _plant_stream(c, 2, "use Bearer abc"),
        "interactions[2].events[1]: a bearer or basic credential",
    ),
    "hex-in-response-header": (
        lambda c: _plant_response_header(c, 0, f"x-session: {HEX}"),
        "interactions[0].chunks: a hex run of 32 characters",
    ),
}


@pytest.mark.parametrize("plant", list(PLANTS))
def test_lint_flags_what_looks_like_a_secret(plant: str) -> None:
    base = load_cassette(CASSETTES / "plain-chat.json")
    assert g.cassette.lint(base) == []
    make, expected = PLANTS[plant]
    findings = g.cassette.lint(make(base))
    assert any(finding.startswith(expected) for finding in findings), findings


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_lint_is_clean_on_every_shipped_cassette(path: Path) -> None:
    assert g.cassette.lint(load_cassette(path)) == []


def test_lint_command(tmp_path: Path) -> None:
    done = gptalk("cassette", "lint", *map(str, SHIPPED), timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    for path in SHIPPED:
        assert f"{path}: no secrets found" in done.stdout
    planted = tmp_path / "planted.json"
    save_cassette(planted, PLANTS["hex-in-header"][0](load_cassette(CASSETTES / "plain-chat.json")))
    done = gptalk("cassette", "lint", str(planted), timeout=60)
    assert done.returncode == 1
    assert "(x-trace): a hex run of 32 characters" in done.stdout
    assert HEX not in done.stdout + done.stderr
