"""What the pytest plugin's tests share: an inner pytest (``pytester``, run in
subprocesses, as users run it), the shipped cassettes, and checks."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

import gptalk_proto as g
import gptalk_proto.cassette
from gptalk_transports._cassettes import load_cassette
from gptalk_transports._cli.cassette import verify_cassette

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"
#: Nothing listens here: a run given this URL proves it needed no server.
NOWHERE = "http://127.0.0.1:1"

CONFTEST = """
import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param
"""

INI = """
[pytest]
addopts = --strict-markers -ra
filterwarnings = error
"""


def make_inner(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester with the inner conftest (anyio on asyncio and trio)."""
    pytester.makeconftest(CONFTEST)
    pytester.makeini(INI)
    return pytester


def run(pytester: pytest.Pytester, mode: str | None, *args: str) -> pytest.RunResult:
    """The inner pytest, in a subprocess; ``mode`` None gives no record-mode flag."""
    flags = [] if mode is None else [f"--gptalk-record-mode={mode}"]
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *flags, *args, timeout=120)


def folder(pytester: pytest.Pytester, module: str) -> Path:
    """The default cassette folder of the inner test module ``module``."""
    path = pytester.path / "cassettes" / module
    path.mkdir(parents=True, exist_ok=True)
    return path


def copy_shipped(
    pytester: pytest.Pytester, name: str, module: str, as_name: str | None = None
) -> Path:
    """A shipped cassette, copied into ``module``'s cassette folder."""
    target = folder(pytester, module) / (as_name or name)
    shutil.copyfile(CASSETTES / name, target)
    return target


def plain_chat_recorded_at(moment: float) -> dict[str, Any]:
    """plain-chat.json as if recorded at unix time ``moment`` (its login token
    expiring an hour later, as the service's tokens do)."""
    raw: dict[str, Any] = json.loads((CASSETTES / "plain-chat.json").read_text(encoding="utf-8"))
    login = load_cassette(CASSETTES / "plain-chat.json").interactions[0]
    old_expiry = str(json.loads(login.response.wire.split(b"\r\n\r\n", 1)[1])["data"]["expires_at"])
    new_expiry = str(int(moment) + 3600)
    assert len(new_expiry) == len(old_expiry)  # the Content-Length stays true
    chunk = raw["interactions"][0]["chunks"][0]
    chunk["data"] = chunk["data"].replace(old_expiry, new_expiry)
    raw["recorded_at"] = datetime.fromtimestamp(int(moment), timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    g.cassette.Cassette.loads(json.dumps(raw))  # still a valid cassette
    return raw


def assert_good_cassette(path: Path) -> g.cassette.Cassette:
    """It loads, verifies (re-parse and replays) and lints clean."""
    cassette, _ = verify_cassette(path)
    assert cassette.redacted
    assert g.cassette.lint(cassette) == []
    return cassette


def prompts(cassette: g.cassette.Cassette) -> list[str]:
    """The prompt of every text request, in order."""
    return [item.request.json()["content"] for item in cassette.interactions if item.kind == "text"]


def report_section(result: pytest.RunResult, title: str) -> list[str]:
    """The lines of one test's report (from its ``___ title ___`` header to
    the next header or summary), to hold failures short."""
    lines = result.outlines
    start = next(n for n, line in enumerate(lines) if line.strip("_ ") == title)
    end = start + 1
    while end < len(lines) and not lines[end].startswith(("___", "===")):
        end += 1
    return lines[start:end]
