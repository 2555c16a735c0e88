"""Loading hostile or broken cassette files: every command refuses them the
same way, with one line naming the file and the field, and never hangs,
crashes (exit 70) or recurses out of its stack."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import gptalk_proto as g
import gptalk_proto.cassette
from gptalk_proto.cassette import _checks as _cassette_checks
from gptalk_proto.cassette._har import _when
from gptalk_transports._cassettes import CassetteFileError, load_cassette
from gptalk_transports._cli.exits import EXIT_CODES

from .console import gptalk
from .replay_cases import CASSETTES

Raw = dict[str, Any]

#: Every command that loads a cassette, as argv before the file's name
#: (``replay --serve`` loads its files inside its event loop).
LOADERS = [
    ["replay", "--speed", "1"],
    ["replay", "--serve"],
    ["cassette", "lint"],
    ["cassette", "to-har"],
]


def _plain_chat() -> Raw:
    raw: Raw = json.loads((CASSETTES / "plain-chat.json").read_text(encoding="utf-8"))
    return raw


def _write(tmp_path: Path, raw: Raw, *, deep: int = 0) -> Path:
    text = json.dumps(raw, ensure_ascii=False)
    if deep:
        # json.dumps itself recurses: splice the nesting in as text.
        text = text.replace('"PLACEHOLDER"', "[" * deep + "]" * deep)
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    return path


def _set(path: str, value: Any) -> Callable[[Raw], None]:
    steps = [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", path)]

    def mutate(raw: Raw) -> None:
        target: Any = raw
        for step in steps[:-1]:
            target = target[step]
        target[steps[-1]] = value

    return mutate


# (name, mutation, the field the message names); each exited 70 or hung before.
BROKEN: list[tuple[str, Callable[[Raw], None], str]] = [
    ("method-with-space", _set("interactions[1].request.method", "PO ST"), "request.method"),
    ("method-empty", _set("interactions[1].request.method", ""), "request.method"),
    ("method-not-ascii", _set("interactions[1].request.method", "PÖST"), "request.method"),
    ("chunk-t-1e12", _set("interactions[2].chunks[3].t", 1e12), "interactions[2].chunks[3].t"),
    ("request-t-1e12", _set("interactions[2].request.t", 1e12), "interactions[2].request.t"),
    ("origin-no-host", _set("origin", "http://"), "cassette.origin"),
    ("origin-port-99999", _set("origin", "http://127.0.0.1:99999"), "cassette.origin"),
    ("origin-crlf", _set("origin", "http://127.0.0.1:1\r\nx: y"), "cassette.origin"),
    (
        "chunk-no-head",
        _set(
            "interactions[0].chunks",
            [{"t": 0.1, "encoding": "utf-8", "data": "HTTP/1.1 200 OK\r\n"}],
        ),
        "interactions[0].chunks",
    ),
]


@pytest.mark.parametrize(("name", "mutate", "field"), BROKEN, ids=[b[0] for b in BROKEN])
@pytest.mark.parametrize("command", LOADERS, ids=[" ".join(c) for c in LOADERS])
def test_every_command_refuses_a_broken_cassette_naming_file_and_field(
    tmp_path: Path, name: str, mutate: Callable[[Raw], None], field: str, command: list[str]
) -> None:
    raw = _plain_chat()
    mutate(raw)
    path = _write(tmp_path, raw)
    result = gptalk(*command, str(path))
    assert result.returncode == EXIT_CODES["cassette"], result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"gptalk: error: {path}: "), lines[0]
    assert field in lines[0]
    assert "peer" not in lines[0]  # the file is at fault, not a connection
    assert result.stdout == ""


@pytest.mark.parametrize(("name", "mutate", "field"), BROKEN, ids=[b[0] for b in BROKEN])
def test_verify_fails_a_broken_cassette_naming_the_field(
    tmp_path: Path, name: str, mutate: Callable[[Raw], None], field: str
) -> None:
    raw = _plain_chat()
    mutate(raw)
    path = _write(tmp_path, raw)
    result = gptalk("cassette", "verify", str(path))
    # Finding what is wrong with a cassette is verify's job: a check result.
    assert result.returncode == EXIT_CODES["check"], result.stderr
    assert result.stdout.startswith(f"{path}: FAILED: ")
    assert field in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize("command", [*LOADERS, ["cassette", "verify"]], ids=str)
def test_a_missing_file_is_exit_6_from_every_command(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "nope.json"
    result = gptalk(*command, str(missing))
    assert result.returncode == EXIT_CODES["cassette"], result.stderr
    assert result.stderr.splitlines() == [
        f"gptalk: error: {missing}: cannot read the cassette: No such file or directory"
    ]


def test_verify_and_lint_check_the_other_files_past_a_missing_one(tmp_path: Path) -> None:
    good = CASSETTES / "plain-chat.json"
    for tool in ("verify", "lint"):
        result = gptalk("cassette", tool, str(tmp_path / "nope.json"), str(good))
        assert result.returncode == EXIT_CODES["cassette"], result.stderr
        assert f"{good}: " in result.stdout
        assert len(result.stderr.splitlines()) == 1


def test_a_folder_is_no_cassette(tmp_path: Path) -> None:
    with pytest.raises(CassetteFileError, match=rf"^{re.escape(str(tmp_path))}: cannot read"):
        load_cassette(tmp_path)


# -- nesting ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", [*LOADERS, ["cassette", "verify"]], ids=str)
def test_json_nested_100000_deep_is_refused(tmp_path: Path, command: list[str]) -> None:
    raw = _plain_chat()
    raw["meta"] = {"deeper": "PLACEHOLDER"}
    path = _write(tmp_path, raw, deep=100_000)
    result = gptalk(*command, str(path))
    assert result.returncode in (EXIT_CODES["cassette"], EXIT_CODES["check"]), result.stderr
    assert "Traceback" not in result.stderr
    assert f"JSON nested deeper than {g.cassette.MAX_DEPTH} levels" in result.stderr + result.stdout
    assert str(path) in result.stderr + result.stdout


@pytest.mark.parametrize("text", ["[" * 100_000, "{" + '"a":{' * 100_000, "[" * 65 + "]" * 65])
def test_deep_json_text_is_a_cassette_error(text: str) -> None:
    for form in (text, text.encode()):
        with pytest.raises(
            g.cassette.CassetteError, match=r"^cassette: JSON nested deeper than 64"
        ):
            g.cassette.Cassette.loads(form)


def test_the_depth_limit_lets_brackets_inside_strings_pass() -> None:
    raw = _plain_chat()
    raw["meta"] = {"note": "[" * 1000 + '\\"{' * 1000}
    loaded = g.cassette.Cassette.loads(json.dumps(raw))
    assert loaded.meta["note"].startswith("[[[")


class _Counting:
    """A compiled pattern whose search/match count the characters they scan."""

    def __init__(self, pattern: re.Pattern[str], scanned: list[int]) -> None:
        self.pattern = pattern
        self.scanned = scanned

    def search(self, text: str, position: int) -> re.Match[str] | None:
        found = self.pattern.search(text, position)
        self.scanned[0] += (found.end() if found else len(text)) - position
        return found

    def match(self, text: str, position: int) -> re.Match[str] | None:
        found = self.pattern.match(text, position)
        self.scanned[0] += (found.end() if found else len(text)) - position
        return found


@pytest.mark.parametrize(
    "text",
    [
        # An unterminated string of escaped quotes: a scanner that retried from
        # every quote would read the rest of the text once per quote.
        '["' + '\\"' * 200_000,
        '"' + "a" * 200_000,
        "[" + '"a", ' * 50_000 + '"a"]',
        "[" * 60 + '"\\\\"' * 50_000,
    ],
    ids=["escaped-quotes", "open-string", "many-strings", "escaped-backslashes"],
)
def test_the_depth_scan_reads_each_character_about_once(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    scanned = [0]
    checks = _cassette_checks
    monkeypatch.setattr(checks, "_JSON_SPECIAL", _Counting(checks._JSON_SPECIAL, scanned))
    monkeypatch.setattr(checks, "_JSON_STRING_REST", _Counting(checks._JSON_STRING_REST, scanned))
    assert checks.nesting_problem(text, 64) is None
    assert scanned[0] <= 2 * len(text)


def test_a_deep_json_request_body_is_written_as_text_so_it_loads() -> None:
    cassette = g.cassette.Cassette.loads(
        (CASSETTES / "plain-chat.json").read_text(encoding="utf-8")
    )
    item = cassette.interactions[1]
    body = ("[" * 80 + "]" * 80).encode()
    deep = g.cassette.Interaction(
        item.connection,
        g.cassette.RecordedRequest(item.request.t, "POST", "/x", item.request.headers, body),
        item.response,
    )
    again = g.cassette.Cassette.loads(
        g.cassette.Cassette((deep,), cassette.recorded_at, cassette.origin).dumps()
    )
    assert again.interactions[0].request.body == body


# -- times -----------------------------------------------------------------------------


def test_the_time_limit_keeps_har_dates_in_range() -> None:
    # The loader bounds the offsets; HAR adds them to a free-form date.
    assert _when("9999-12-31T23:59:59Z", g.cassette.MAX_TIME).startswith("9999-12-31T23:59:59")
    assert _when("2024-01-01T00:00:00Z", g.cassette.MAX_TIME) == "2024-01-08T00:00:00.000Z"


def test_a_week_long_gap_loads(tmp_path: Path) -> None:
    raw = _plain_chat()
    for chunk in raw["interactions"][2]["chunks"][3:]:
        chunk["t"] = g.cassette.MAX_TIME
    cassette = g.cassette.Cassette.loads(json.dumps(raw))
    assert cassette.interactions[2].response.chunks[-1].t == g.cassette.MAX_TIME
    entries = g.cassette.to_har(cassette)["log"]["entries"]
    assert entries[2]["_chunks"][-1]["offset_ms"] > (g.cassette.MAX_TIME - 1) * 1000


def test_a_chunk_cut_inside_the_head_is_described_as_the_file() -> None:
    raw = _plain_chat()
    raw["interactions"][0]["chunks"] = [
        {"t": 0.1, "encoding": "utf-8", "data": "HTTP/1.1 200 OK\r\ncontent-"}
    ]
    with pytest.raises(g.cassette.CassetteError) as info:
        g.cassette.Cassette.loads(json.dumps(raw))
    message = str(info.value)
    assert message.startswith("interactions[0].chunks: the recorded bytes do not parse")
    assert "end before the response head does" in message
    assert "peer" not in message


@pytest.mark.parametrize("command", LOADERS, ids=[" ".join(c) for c in LOADERS])
def test_invalid_json_is_named_with_its_file(tmp_path: Path, command: list[str]) -> None:
    path = tmp_path / "half.json"
    path.write_text('{"format_version": 1,', encoding="utf-8")
    result = gptalk(*command, str(path))
    assert result.returncode == EXIT_CODES["cassette"], result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"gptalk: error: {path}: cassette: invalid JSON ("), line
