"""Malformed cassettes, as mutations of a shipped one: what each breaks, and
the path the loader's CassetteError must name (and whether the schema can
say it too).  Used by test_cassette_format."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, NamedTuple

Raw = dict[str, Any]


class Mutation(NamedTuple):
    name: str
    mutate: Callable[[Raw], None]
    #: Substrings the CassetteError's message must contain (the first: the path).
    says: tuple[str, ...]
    #: Whether the schema can express the error (then it must reject it too).
    schema: bool


def _set(path: str, value: Any) -> Callable[[Raw], None]:
    def mutate(raw: Raw) -> None:
        *parents, last = _steps(path)
        target: Any = raw
        for step in parents:
            target = target[step]
        target[last] = value

    return mutate


def _update(path: str, fields: dict[str, Any]) -> Callable[[Raw], None]:
    """Sets some fields of the object at ``path``, keeping the others."""

    def mutate(raw: Raw) -> None:
        target: Any = raw
        for step in _steps(path):
            target = target[step]
        target.update(fields)

    return mutate


def _delete(path: str) -> Callable[[Raw], None]:
    def mutate(raw: Raw) -> None:
        *parents, last = _steps(path)
        target: Any = raw
        for step in parents:
            target = target[step]
        del target[last]

    return mutate


def _steps(path: str) -> list[str | int]:
    return [int(part) if part.isdigit() else part for part in re.findall(r"[^.\[\]]+", path)]


def edit_event_data(raw: Raw) -> None:
    event = raw["interactions"][2]["events"][3]
    edited = event["data"].replace("said", "SAID")
    assert edited != event["data"], "the mutation must change the event"
    event["data"] = edited


def _garbage_chunk(raw: Raw) -> None:
    raw["interactions"][0]["chunks"][0]["data"] = "garbage, not HTTP\r\n\r\n"


def _response_header_differs(raw: Raw) -> None:
    raw["interactions"][0]["response"]["headers"][0] = ["server", "someone-else"]


MUTATIONS = [
    Mutation(
        "missing-format-version",
        _delete("format_version"),
        ("cassette.format_version", "missing"),
        True,
    ),
    Mutation(
        "format-version-2",
        _set("format_version", 2),
        ("cassette.format_version", "newer", "upgrade"),
        True,
    ),
    Mutation("format-version-0", _set("format_version", 0), ("cassette.format_version",), True),
    Mutation(
        "chunk-t-wrong-type",
        _set("interactions[2].chunks[1].t", "0.006"),
        ("interactions[2].chunks[1].t", "expected"),
        True,
    ),
    Mutation(
        "chunk-t-bool",
        _set("interactions[2].chunks[1].t", True),
        ("interactions[2].chunks[1].t",),
        True,
    ),
    Mutation(
        "chunk-t-negative",
        _set("interactions[2].chunks[1].t", -0.5),
        ("interactions[2].chunks[1].t", "negative"),
        True,
    ),
    Mutation(
        "request-t-negative",
        _set("interactions[1].request.t", -1),
        ("interactions[1].request.t", "negative"),
        True,
    ),
    Mutation(
        "bad-base64",
        _update(  # the chunk's time stays the recorded one
            "interactions[2].chunks[3]",
            {"encoding": "base64", "data": "this is not base64!"},
        ),
        ("interactions[2].chunks[3].data", "base64"),
        False,  # contentEncoding is an annotation in 2020-12, not an assertion
    ),
    Mutation(
        "unknown-encoding",
        _set("interactions[2].chunks[1].encoding", "latin-1"),
        ("interactions[2].chunks[1].encoding", "latin-1"),
        True,
    ),
    Mutation(
        "bad-end",
        _set("interactions[2].response.end", "finished"),
        ("interactions[2].response.end", "finished"),
        True,
    ),
    Mutation(
        "header-pair-of-3",
        _set("interactions[0].request.headers[1]", ["accept", "*/*", "extra"]),
        ("interactions[0].request.headers[1]", "pair"),
        True,
    ),
    Mutation(
        "header-value-not-str",
        _set("interactions[0].response.headers[0]", ["server", 5]),
        ("interactions[0].response.headers[0]", "str"),
        True,
    ),
    Mutation(
        "headers-not-list",
        _set("interactions[0].request.headers", {"accept": "*/*"}),
        ("interactions[0].request.headers",),
        True,
    ),
    Mutation(
        "missing-method",
        _delete("interactions[1].request.method"),
        ("interactions[1].request.method", "missing"),
        True,
    ),
    Mutation(
        "connection-not-int",
        _set("interactions[0].connection", "1"),
        ("interactions[0].connection", "int"),
        True,
    ),
    Mutation("redacted-not-bool", _set("redacted", "yes"), ("cassette.redacted", "bool"), True),
    Mutation(
        "chunk-not-object",
        _set("interactions[2].chunks[0]", "HTTP/1.1 200 \r\n\r\n"),
        ("interactions[2].chunks[0]", "dict"),
        True,
    ),
    Mutation(
        "event-missing-data",
        _delete("interactions[2].events[0].data"),
        ("interactions[2].events[0].data", "missing"),
        True,
    ),
    Mutation(
        "event-retry-not-int",
        _set("interactions[2].events[0].retry", "5"),
        ("interactions[2].events[0].retry", "int"),
        True,
    ),
    Mutation(
        "event-id-with-nul",
        _set("interactions[2].events[0].id", "a\x00b"),
        ("interactions[2].events[0].id",),
        False,  # any string is a string to the schema
    ),
    Mutation(
        "events-differ-from-chunks",
        edit_event_data,
        ("interactions[2].events", "differ"),
        False,
    ),
    Mutation(
        "status-differs-from-chunks",
        _set("interactions[1].response.status", 201),
        ("interactions[1].response", "status"),
        False,
    ),
    Mutation(
        "response-header-differs-from-chunks",
        _response_header_differs,
        ("interactions[0].response", "headers"),
        False,
    ),
    Mutation(
        "chunks-do-not-parse",
        _garbage_chunk,
        ("interactions[0].chunks", "do not parse"),
        False,
    ),
]


def _chunk_goes_back_in_time(raw: Raw) -> None:
    chunks = raw["interactions"][2]["chunks"]
    chunks[2]["t"] = chunks[1]["t"] - 0.0001


def _chunk_before_its_request(raw: Raw) -> None:
    item = raw["interactions"][1]
    item["chunks"][0]["t"] = item["request"]["t"] - 0.0001


# What a hostile or corrupt file holds, and once crashed or hung the commands
# (exit 70, or a replay waiting forever): each is refused naming the field.
MUTATIONS += [
    Mutation(
        "method-with-space",
        _set("interactions[1].request.method", "PO ST"),
        ("interactions[1].request.method", "'PO ST'", "not an HTTP method"),
        True,
    ),
    Mutation(
        "method-empty",
        _set("interactions[1].request.method", ""),
        ("interactions[1].request.method", "not an HTTP method"),
        True,
    ),
    Mutation(
        "method-not-ascii",
        _set("interactions[1].request.method", "PÖST"),
        ("interactions[1].request.method", "not an HTTP method"),
        True,
    ),
    Mutation(
        "target-with-space",
        _set("interactions[0].request.target", "/api/chatgpt/user/login HTTP/1.1"),
        ("interactions[0].request.target",),
        True,
    ),
    Mutation(
        "chunk-t-1e12",
        _set("interactions[2].chunks[1].t", 1e12),
        ("interactions[2].chunks[1].t", "limit"),
        True,
    ),
    Mutation(
        "chunk-t-400-digits",
        _set("interactions[2].chunks[1].t", 10**400),
        ("interactions[2].chunks[1].t", "limit"),
        True,
    ),
    Mutation(
        "chunk-t-infinite",
        _set("interactions[2].chunks[1].t", float("inf")),
        ("interactions[2].chunks[1].t", "finite"),
        True,
    ),
    Mutation(
        "chunk-t-nan",
        _set("interactions[2].chunks[1].t", float("nan")),
        ("interactions[2].chunks[1].t", "finite"),
        False,  # NaN is neither below the minimum nor above the maximum
    ),
    Mutation(
        "request-t-1e12",
        _set("interactions[1].request.t", 1e12),
        ("interactions[1].request.t", "limit"),
        True,
    ),
    Mutation(
        "chunk-t-goes-back",
        _chunk_goes_back_in_time,
        ("interactions[2].chunks[2].t", "earlier than the chunk before it"),
        False,  # an order between items is beyond the schema
    ),
    Mutation(
        "chunk-before-its-request",
        _chunk_before_its_request,
        ("interactions[1].chunks[0].t", "earlier than the request"),
        False,
    ),
    Mutation("origin-no-host", _set("origin", "http://"), ("cassette.origin", "no host"), True),
    Mutation(
        "origin-port-99999",
        _set("origin", "http://127.0.0.1:99999"),
        ("cassette.origin", "out of range"),
        False,  # a pattern for 1-65535 is not worth its unreadability
    ),
    Mutation(
        "origin-port-0",
        _set("origin", "http://127.0.0.1:0"),
        ("cassette.origin", "port 0"),
        False,
    ),
    Mutation(
        "origin-crlf",
        _set("origin", "http://127.0.0.1:1\r\nx-injected: 1"),
        ("cassette.origin", "'\\r'"),
        True,
    ),
    Mutation(
        "origin-bracket-left-open",
        _set("origin", "http://[::1"),
        ("cassette.origin", "not a URL"),
        False,
    ),
    Mutation(
        "origin-credentials",
        _set("origin", "http://user:pw@127.0.0.1:1"),
        ("cassette.origin", "credentials"),
        True,
    ),
]


# Documents the schema refuses, which the loader must refuse as well (with a
# CassetteError naming the field), or the two are not "the same format".
AGREEMENT = [
    Mutation(
        "connection-zero",
        _set("interactions[0].connection", 0),
        ("interactions[0].connection",),
        True,
    ),
    Mutation(
        "event-without-retry",
        _delete("interactions[2].events[0].retry"),
        ("interactions[2].events[0].retry",),
        True,
    ),
    Mutation(
        "event-retry-negative",
        _set("interactions[2].events[0].retry", -1),
        ("interactions[2].events[0].retry",),
        True,
    ),
    Mutation(
        "event-unknown-field",
        _set("interactions[2].events[0].comment", "x"),
        ("interactions[2].events[0]",),
        True,
    ),
    Mutation("unknown-top-level-field", _set("extra", 1), ("cassette",), True),
    Mutation("origin-not-http", _set("origin", "ftp://example"), ("cassette.origin",), True),
    Mutation("generator-not-str", _set("generator", 5), ("cassette.generator",), True),
    Mutation("profile-unknown", _set("profile", "openaii"), ("cassette.profile",), True),
    Mutation("profile-not-str", _set("profile", 1), ("cassette.profile",), True),
    Mutation(
        "json-body-without-data",
        _set("interactions[2].request.body", {"encoding": "json"}),
        ("interactions[2].request.body",),
        True,
    ),
]


def _chunk_as_json(raw: Raw) -> None:
    chunk = raw["interactions"][0]["chunks"][0]
    head, body = chunk["data"].split("\r\n\r\n", 1)
    raw["interactions"][0]["chunks"] = [
        {"t": chunk["t"], "encoding": "utf-8", "data": head + "\r\n\r\n"},
        {"t": chunk["t"], "encoding": "json", "data": json.loads(body)},
    ]


AGREEMENT.append(
    Mutation(
        "chunk-encoding-json",
        _chunk_as_json,
        ("interactions[0].chunks[1].encoding",),
        True,
    )
)
