"""A careless user's command lines: an output that is not a plain file, a
stdout or stderr the shell closed, a proxy URL the environment mangled, a
scenario folder that is a file, a cassette whose text would steer a terminal.
Each ends in one typed error line (or does what was asked), never in a
traceback or an internal error, and destroys nothing."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from gptalk_transports import _cassettes
from gptalk_transports._cli import common, main, serve
from gptalk_transports._cli.exits import EXIT_CODES

from .console import ENV, GPTALK, gptalk
from .replay_cases import CASSETTES
from .test_cli import assert_one_error_line

PLAIN = str(CASSETTES / "plain-chat.json")


# -- -o names something that is not a regular file ------------------------------


def test_an_output_fifo_is_written_to_not_replaced(tmp_path: Path) -> None:
    # -o /dev/full or -o /dev/null named a device: the file written beside it
    # was moved over it, and the device node was gone (as root, for everyone).
    # A FIFO stands for any such name here: the test cannot break the machine.
    fifo = tmp_path / "out.har"
    os.mkfifo(fifo)
    # Open for reading and writing: neither this open nor gptalk's blocks, and
    # the HAR (well under a pipe's buffer) waits in the pipe.
    reader = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    try:
        result = gptalk("cassette", "to-har", PLAIN, "-o", str(fifo))
        assert result.returncode == 0, result.stderr
        assert stat.S_ISFIFO(fifo.stat().st_mode)
        written = b""
        while True:
            try:
                piece = os.read(reader, 65536)
            except BlockingIOError:
                break
            written += piece
    finally:
        os.close(reader)
    assert json.loads(written)["log"]["version"] == "1.2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.har"]


def test_an_output_symlink_keeps_pointing_at_the_written_file(tmp_path: Path) -> None:
    real = tmp_path / "real.har"
    real.write_text("old\n", encoding="utf-8")
    link = tmp_path / "link.har"
    link.symlink_to(real)
    result = gptalk("cassette", "to-har", PLAIN, "-o", str(link))
    assert result.returncode == 0, result.stderr
    assert link.is_symlink()
    assert json.loads(real.read_text(encoding="utf-8"))["log"]["version"] == "1.2"
    # A link to itself: written over, as a plain name (resolve() raised
    # RuntimeError here, an internal error).
    loop = tmp_path / "loop.har"
    loop.symlink_to(loop)
    result = gptalk("cassette", "to-har", PLAIN, "-o", str(loop))
    assert result.returncode == 0, result.stderr
    assert json.loads(loop.read_text(encoding="utf-8"))["log"]["version"] == "1.2"


# -- stdout or stderr closed by the shell (>&-, 2>&-) -------------------------------


def _closed(args: list[str], fd: int) -> subprocess.CompletedProcess[str]:
    """``gptalk ARGS`` with file descriptor ``fd`` (0, 1 or 2) closed (the
    others captured), as ``<&-``, ``>&-`` or ``2>&-`` leaves it."""
    return subprocess.run(
        [str(GPTALK), *args],
        input=None if fd == 0 else "",
        stdout=None if fd == 1 else subprocess.PIPE,
        stderr=None if fd == 2 else subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env=ENV,
        timeout=30,
        check=False,
        preexec_fn=lambda: os.close(fd),  # in the child, before gptalk starts
    )


def test_a_closed_stdout_is_one_usage_line_before_any_work(tmp_path: Path) -> None:
    # It was an internal error (exit 70) at the first write, after the chat
    # ran; with --json, a traceback.
    output = tmp_path / "out.json"
    for args in (
        ["chat", "hi"],
        ["chat", "--json", "hi"],
        ["replay", "--speed", "0", PLAIN],
        ["cassette", "schema"],
        ["record", "-o", str(output), "hi"],
    ):
        result = _closed(args, 1)
        assert result.returncode == EXIT_CODES["usage"], (args, result.stderr)
        [line] = result.stderr.splitlines()
        assert line.startswith("gptalk: error: stdout is closed"), line
    assert not output.exists()


def test_a_closed_stderr_still_gives_the_exit_code(tmp_path: Path) -> None:
    output = tmp_path / "out.json"
    result = _closed(["record", "-o", str(output), "hi"], 2)
    assert result.returncode == 0
    assert json.loads(output.read_text(encoding="utf-8"))["interactions"]
    result = _closed(["replay", str(tmp_path / "missing.json")], 2)
    assert result.returncode == EXIT_CODES["cassette"]
    assert result.stdout == ""


# -- a proxy URL the environment or the command line mangled ---------------------


def _chat_env(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GPTALK), "chat", "--url", "http://127.0.0.1:9", *args, "hi"],
        input="",
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="backslashreplace",
        env={**ENV, **env},
        timeout=30,
        check=False,
    )


#: Proxy URLs urlsplit refuses (a bracket left open) or that hold bytes that
#: are not UTF-8 (a surrogate, as Python reads them from argv and environ):
#: each was an internal error (exit 70), ValueError or UnicodeEncodeError.
MANGLED_PROXIES = [
    "http://user:s3cretpw@[",
    "http://user:s3cretpw@[::1",
    "http://user:s3\udcffcretpw@127.0.0.1:1",
    "http://user:s3cretpw@127.0.0.\udcff:1",
]


def test_a_mangled_proxy_url_is_one_usage_line_without_its_secret() -> None:
    for proxy in MANGLED_PROXIES:
        for result in (
            _chat_env({"HTTP_PROXY": proxy}),
            _chat_env({"http_proxy": proxy}),
            _chat_env({}, "--proxy", proxy),
        ):
            assert result.returncode == EXIT_CODES["usage"], (proxy, result.stderr)
            [line] = result.stderr.splitlines()
            assert line.startswith("gptalk: error: "), line
            assert "proxy" in line
            assert "s3cret" not in line


# -- cassette rerecord -o DIR where DIR cannot take the files -------------------


def test_rerecord_into_a_file_or_onto_a_folder_is_one_usage_line(tmp_path: Path) -> None:
    # Both were internal errors (exit 70): FileExistsError from the folder's
    # mkdir, IsADirectoryError from the write.
    a_file = tmp_path / "a-file"
    a_file.write_text("kept\n", encoding="utf-8")
    line = assert_one_error_line(
        gptalk("cassette", "rerecord", "-o", str(a_file), "--only", "plain-chat"),
        EXIT_CODES["usage"],
    )
    assert f"-o {a_file}" in line
    assert a_file.read_text(encoding="utf-8") == "kept\n"
    taken = tmp_path / "folder"
    (taken / "plain-chat.json").mkdir(parents=True)
    line = assert_one_error_line(
        gptalk("cassette", "rerecord", "-o", str(taken), "--only", "plain-chat"),
        EXIT_CODES["usage"],
    )
    assert "plain-chat.json" in line
    assert [p.name for p in taken.iterdir()] == ["plain-chat.json"]


# -- a cassette's own text in a message --------------------------------------------

#: Text that would steer a terminal (ESC starts a sequence that retitles the
#: window, U+202E reverses what follows), long enough to flood it.
STEERING = "\x1b]0;owned\x07\u202e" + "A" * 100_000


def _mangled(tmp_path: Path, change: str) -> Path:
    raw = json.loads((CASSETTES / "plain-chat.json").read_text(encoding="utf-8"))
    first = raw["interactions"][0]
    if change == "key":
        raw[STEERING] = 1
    elif change == "encoding":
        first["chunks"][0]["encoding"] = STEERING
    elif change == "method":
        first["request"]["method"] = STEERING
    elif change == "end":
        first["response"]["end"] = STEERING
    elif change == "header name":
        first["request"]["headers"].append([STEERING, "0123456789abcdef" * 4])
    path = tmp_path / f"{change.replace(' ', '-')}.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


def _shown(text: str) -> None:
    """Every line of ``text`` is one that a terminal shows as it is, and short."""
    for line in text.splitlines():
        assert line.isprintable(), repr(line[:200])
        assert len(line) < 1000, len(line)


def test_a_cassettes_text_in_a_message_is_escaped_and_bounded(tmp_path: Path) -> None:
    # The loader quoted an unknown key as it was (ESC and all) and the other
    # values whole (100 KB lines); lint named a header as it was.
    for change in ("key", "encoding", "method", "end"):
        path = _mangled(tmp_path, change)
        result = gptalk("replay", "--speed", "0", str(path))
        assert_one_error_line(result, EXIT_CODES["cassette"])
        _shown(result.stderr)
        result = gptalk("cassette", "verify", str(path))
        assert result.returncode == 1, result.stderr
        _shown(result.stdout)
    result = gptalk("cassette", "lint", str(_mangled(tmp_path, "header name")))
    assert result.returncode == 1, result.stderr
    assert "a hex run" in result.stdout
    _shown(result.stdout)


# -- a host name no resolver takes -----------------------------------------------

#: Host names the idna codec refuses (a label empty or over 63 characters):
#: getaddrinfo raised UnicodeError, an internal error (exit 70) after the
#: built-in checks had passed the URL.
UNRESOLVABLE = ["a" * 64 + ".example", "a..example", ".example"]


def test_a_host_name_with_a_bad_label_is_one_usage_line() -> None:
    for host in UNRESOLVABLE:
        # The proxy in the environment reaches ProxyURL.parse's own message.
        result = _chat_env({"HTTP_PROXY": f"http://user:s3cretpw@{host}:1"})
        line = assert_one_error_line(result, EXIT_CODES["usage"])
        assert "host name" in line, line
        assert "s3cret" not in line
        for args in (
            ["chat", "--url", f"http://{host}/", "hi"],
            [
                "chat",
                "--url",
                "http://127.0.0.1:9",
                "--proxy",
                f"http://user:s3cretpw@{host}:1",
                "hi",
            ],
            ["record", "-o", "unused.json", "--url", f"http://{host}/", "hi"],
        ):
            line = assert_one_error_line(gptalk(*args), EXIT_CODES["usage"])
            # --proxy's own message names no part of the URL (credentials).
            assert ("proxy URL" if "--proxy" in args else "not a host name") in line, line
            assert "s3cret" not in line


# -- a server command's --host ----------------------------------------------------

#: Each was an internal error (exit 70): a UnicodeError from the idna codec
#: (record --listen) or inside a task group (serve, a surrogate).
BAD_LISTEN_HOSTS = ["a" * 64, "a\udcffb", "\x1b]0;owned\x07" + "a" * 5000]


def test_a_bad_listen_host_is_one_short_usage_line(tmp_path: Path) -> None:
    output = tmp_path / "out.json"
    cassette = str(CASSETTES / "plain-chat.json")
    for host in BAD_LISTEN_HOSTS:
        for args in (
            ["serve", "--host", host],
            ["replay", "--serve", cassette, "--host", host],
            [
                "record",
                "--listen",
                "-o",
                str(output),
                "--url",
                "http://127.0.0.1:9",
                "--host",
                host,
            ],
        ):
            result = subprocess.run(
                [str(GPTALK), *args],
                input="",
                capture_output=True,
                text=True,
                encoding="utf-8",
                errors="backslashreplace",
                env=ENV,
                timeout=30,
                check=False,
            )
            line = assert_one_error_line(result, EXIT_CODES["usage"])
            _shown(line)
    assert not output.exists()


# -- to-har -o naming the cassette itself -----------------------------------------


def test_to_har_onto_its_own_cassette_is_refused_and_keeps_it(tmp_path: Path) -> None:
    # The HAR replaced the cassette (exit 0): the recording was gone.
    cassette = tmp_path / "plain.json"
    original = (CASSETTES / "plain-chat.json").read_bytes()
    cassette.write_bytes(original)
    link = tmp_path / "link.json"
    link.symlink_to(cassette)
    for output in (cassette, link, tmp_path / "." / "plain.json"):
        line = assert_one_error_line(
            gptalk("cassette", "to-har", str(cassette), "-o", str(output)), EXIT_CODES["usage"]
        )
        assert "-o" in line
        assert cassette.read_bytes() == original


# -- no prompt: stdin closed or empty ----------------------------------------------


def test_a_closed_or_empty_stdin_prompt_is_one_usage_line_and_keeps_the_cassette(
    tmp_path: Path,
) -> None:
    # chat - and record - with stdin closed (<&-) were internal errors (exit
    # 70); record recorded an empty prompt over the cassette, where chat
    # refuses one.
    output = tmp_path / "kept.json"
    output.write_text("kept\n", encoding="utf-8")
    runs = []
    for args in (["chat", "-"], ["record", "-o", str(output), "-"]):
        runs.append(_closed(args, 0))
    runs.append(gptalk("record", "-o", str(output), "-", stdin=""))
    runs.append(gptalk("record", "-o", str(output), "hi", " "))
    runs.append(gptalk("record", "-o", str(output), "-", "-", stdin="first\n"))
    for result in runs:
        line = assert_one_error_line(result, EXIT_CODES["usage"])
        assert "the prompt is empty" in line, line
    assert output.read_text(encoding="utf-8") == "kept\n"


# -- a cassette name that reads without end ------------------------------------------


def test_a_cassette_past_the_size_cap_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 'gptalk replay /dev/zero' read until memory ran out (MemoryError, exit
    # 70, or the OOM killer).  The cap, lowered here, stands for the real one.
    monkeypatch.setattr(_cassettes, "MAX_CASSETTE_BYTES", 1024)
    big = tmp_path / "big.json"
    big.write_text(" " * 2048 + "{}", encoding="utf-8")
    for name in (str(big), "/dev/zero"):
        for argv in (["replay", name], ["cassette", "verify", name], ["cassette", "to-har", name]):
            err = io.StringIO()
            try:
                code = main(argv, stdout=io.StringIO(), stderr=err)
            except SystemExit as ended:  # an error line: main() exits
                code = int(str(ended.code))
            assert code == EXIT_CODES["cassette"], err.getvalue()
            [line] = err.getvalue().splitlines()
            assert line == f"gptalk: error: {name}: larger than 1024 bytes: not a cassette", line


def test_a_reply_file_past_its_cap_is_one_usage_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 'gptalk serve --reply-file /dev/zero' read until memory ran out, as
    # load_cassette did.  The cap, lowered here, stands for the real one.
    monkeypatch.setattr(serve, "MAX_REPLY_FILE_BYTES", 1024)
    big = tmp_path / "reply.txt"
    big.write_text("word " * 1000, encoding="utf-8")
    for name in (str(big), "/dev/zero"):
        err = io.StringIO()
        with pytest.raises(SystemExit) as ended:
            main(["serve", "--reply-file", name], stdout=io.StringIO(), stderr=err)
        assert ended.value.code == EXIT_CODES["usage"], err.getvalue()
        [line] = err.getvalue().splitlines()
        assert line == f"gptalk: error: --reply-file {name}: larger than 1024 bytes", line


def test_a_prompt_on_stdin_past_its_cap_is_one_usage_line(monkeypatch: pytest.MonkeyPatch) -> None:
    # 'gptalk chat - < /dev/zero' read stdin until memory ran out.  The cap,
    # lowered here, stands for the real one; nothing is sent or recorded.
    monkeypatch.setattr(common, "MAX_STDIN_PROMPT", 1024)
    for argv in (["chat", "-"], ["record", "-o", "/dev/null", "-"]):
        err = io.StringIO()
        with pytest.raises(SystemExit) as ended:
            main(argv, stdin=io.StringIO("x" * 1025), stdout=io.StringIO(), stderr=err)
        assert ended.value.code == EXIT_CODES["usage"], err.getvalue()
        [line] = err.getvalue().splitlines()
        assert line == "gptalk: error: the prompt on stdin is over 1024 characters", line
