"""Lint runs in linear time, whatever a cassette holds.

The old JWT pattern backtracked quadratically on ``eyJeyJeyJ…`` (238 KB took
20.5 s; 60 KB takes about 4.6 s here, so 1 MB would take some twenty minutes).
These tests bound lint by the *work* it counts (:class:`Scanner.work`: the
length of every string handed to a linear primitive), not by a clock: the
count must stay within a fixed multiple of the input, and doubling the input
must no more than double it.  Each input is 1 MB, so a quadratic rule would
also blow the suite's 120 s timeout by an order of magnitude, while the linear
scan takes about a second.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

import gptalk_proto as g
import gptalk_proto.cassette
from gptalk_proto.cassette._lint import MAX_FINDINGS, Scanner

from .redaction_cases import json_response, response_from

#: Size of each adversarial input, in characters.
SIZE = 1_000_000

#: The most work a linear scan may count per character of input: each rule
#: passes over the text once and looks at each run once more.
WORK_PER_CHAR = 12


def repeat(unit: str, size: int = SIZE) -> str:
    return unit * (size // len(unit))


#: For each rule, inputs that make a backtracking pattern (or a naive
#: rescan from every candidate start) superlinear.
ADVERSARIAL: dict[str, Callable[[int], str]] = {
    "jwt-eyJ-run": lambda n: repeat("eyJ", n),
    "jwt-no-dot": lambda n: "eyJ" + "a" * n,
    "jwt-parts": lambda n: repeat("eyJaaaaaaaa.", n),
    "jwt-short-parts": lambda n: repeat("eyJaaaaaaa.", n),
    "jwt-dots": lambda n: repeat("eyJ.", n),
    "hex-then-not-hex": lambda n: "a" * n + "g",
    "hex-runs": lambda n: repeat("0123456789abcdef" * 2 + "-", n),
    "base64-run": lambda n: repeat("Ab1+", n),
    "base64-padding": lambda n: repeat("Ab1/==", n),
    "bearer-repeated": lambda n: repeat("Bearer ", n),
    "bearer-tokens": lambda n: repeat("Bearer a.b~c ", n),
    "basic-short": lambda n: repeat("Basic a", n),
    "placeholder-open": lambda n: "<" + repeat("a-", n),
    "placeholder-unclosed": lambda n: repeat("<a-1", n),
    "placeholder-many": lambda n: repeat("<secret-1>....", n),
    "ellipses": lambda n: repeat("...", n),
    "escapes": lambda n: repeat("\\u2026", n),
}


@pytest.mark.parametrize("case", list(ADVERSARIAL))
def test_every_rule_is_linear_on_adversarial_input(case: str) -> None:
    make = ADVERSARIAL[case]
    counts = []
    for size in (SIZE // 2, SIZE):
        text = make(size)
        scanner = Scanner()
        list(scanner.suspicious(text))
        assert scanner.work <= WORK_PER_CHAR * len(text), (case, scanner.work, len(text))
        counts.append((scanner.work, len(text)))
    (half_work, half_len), (work, length) = counts
    # Twice the input, at most twice the work (and a little for the ends).
    assert work <= 2 * half_work * length / (2 * half_len) + 64


def hostile_cassette(text: str) -> g.cassette.Cassette:
    """``text`` everywhere lint looks: origin, target, headers, body, events,
    and values a cut-secret search compares."""
    placeholders = " ".join(f"lead{n:04d}<secret-{n}>......" for n in range(2000))
    body = json.dumps({"content": text, "more": placeholders}).encode()
    request = g.cassette.RecordedRequest(
        0.0,
        "POST",
        "/api/chatgpt/chatapi/text?q=" + text.replace(" ", "+")[: SIZE // 4],
        (("host", "h"), ("x-trace", text[: SIZE // 4]), ("cookie", text[: SIZE // 4])),
        body,
    )
    payload = "".join(
        f"data: {json.dumps({'content': text[:end] + '...'})}\n\n"
        for end in range(0, len(text), len(text) // 8 or 1)
    )
    head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
    stream = (head + f"content-length: {len(payload.encode())}\r\n\r\n" + payload).encode()
    reply = json_response({"code": 0, "data": {"token": text[:1000]}})
    return g.cassette.Cassette(
        interactions=(
            g.cassette.Interaction(1, request, response_from("POST", [(0.1, reply)])),
            g.cassette.Interaction(1, request, response_from("POST", [(0.2, stream)])),
        ),
        recorded_at="2024-01-02T03:04:05Z",
        origin="http://h/?k=" + text[:1000].replace(" ", "+"),
        redacted=True,
    )


@pytest.mark.parametrize("case", ["jwt-eyJ-run", "placeholder-many", "ellipses", "hex-runs"])
def test_lint_of_a_hostile_cassette_counts_linear_work(case: str) -> None:
    text = ADVERSARIAL[case](SIZE // 8)
    cassette = hostile_cassette(text)
    size = len(cassette.dumps())
    scanner = Scanner()
    findings = g.cassette.lint(cassette, scanner)
    assert scanner.work <= WORK_PER_CHAR * size, (scanner.work, size)
    assert len(findings) <= MAX_FINDINGS + 1


def test_findings_are_capped_and_counted() -> None:
    body = json.dumps({"content": "Bearer abc " * 500}).encode()
    request = g.cassette.RecordedRequest(0.0, "POST", "/x", (("host", "h"),), body)
    reply = json_response({"code": 0})
    cassette = g.cassette.Cassette(
        interactions=(g.cassette.Interaction(1, request, response_from("POST", [(0.1, reply)])),),
        recorded_at="2024-01-02T03:04:05Z",
        origin="http://h",
        redacted=True,
    )
    findings = g.cassette.lint(cassette)
    assert len(findings) == MAX_FINDINGS + 1
    assert findings[:2] == ["interactions[0].request.body: a bearer or basic credential"] * 2
    assert findings[-1] == f"... and {500 - MAX_FINDINGS} more findings"
