"""The ``gptalk`` command as a user runs it: the console script, in subprocesses."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

import gptalk_proto as g
import gptalk_proto.server
from gptalk_transports._cli.exits import _CASSETTE_TOOLS, COMMAND_EXITS, EXIT_CODES

from .console import GPTALK, TIMEOUT, gptalk, listening


class Server:
    """A running ``gptalk serve``."""

    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.url = url

    def stop(self, signum: int) -> tuple[int, str, str]:
        """Send ``signum``; (exit code, the rest of stdout, stderr) once it exits."""
        self.process.send_signal(signum)
        code = self.process.wait(timeout=10)
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        return code, self.process.stdout.read(), self.process.stderr.read()


@contextmanager
def serving(*args: str, env: Mapping[str, str] | None = None) -> Iterator[Server]:
    """``gptalk serve ARGS`` in a subprocess, once it printed its one ready line
    (``env``: variables to add to its environment)."""
    with listening("serve", *args, env=env, timeout=10) as (process, url):
        yield Server(process, url)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """One healthy ``gptalk serve`` for the tests that only need a peer."""
    with serving() as running:
        yield running


def free_port() -> int:
    """A loopback port with nothing listening on it (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def assert_one_error_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The command failed with ``code``, one ``gptalk: error:`` line and no traceback."""
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("gptalk: error: ")
    return lines[0]


# -- serve, chat, stop ----------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_chat_and_stop_on_a_signal(signum: int) -> None:
    prompt = "Hello, command line!"
    with serving() as running:
        result = gptalk("chat", "--url", running.url, prompt)
        assert result.returncode == 0, result.stderr
        assert result.stdout == g.server.expected_reply(prompt) + "\n"
        assert "Traceback" not in result.stderr
        code, rest, errors = running.stop(signum)
    assert code == 0, errors
    assert rest == ""  # the ready line was the only line on stdout
    assert "Traceback" not in errors


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_right_after_the_ready_line_stops_the_server_cleanly(signum: int) -> None:
    # A supervisor may stop the server as soon as it said it is ready.
    with serving() as running:
        code, rest, errors = running.stop(signum)
    assert code == 0, f"exit {code}, stderr {errors!r}"
    assert rest == ""
    assert "Traceback" not in errors


# A stand-in for the next bug: imported at start-up through PYTHONPATH, it makes
# the reference service raise on GET /boom in the real console script.
BUGGY_SERVICE = """\
import gptalk_proto.server

_handle = gptalk_proto.server.Service.handle


def handle(self, method, target, headers, body, *, now):
    if target == "/boom":
        raise RuntimeError("invalid token LLLL0123-secret")
    return _handle(self, method, target, headers, body, now=now)


gptalk_proto.server.Service.handle = handle
"""

INTERNAL_ERROR_LINE = re.compile(
    r"gptalk: internal error #1 on a connection from 127\.0\.0\.1:\d+: RuntimeError at "
    r"sitecustomize\.py:\d+ in handle(, via \S+ in \w+)?; answered 500 and closed it"
)


def test_serve_keeps_serving_after_an_exception_in_a_connection(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(BUGGY_SERVICE, encoding="utf-8")
    with serving(env={"PYTHONPATH": str(tmp_path)}) as running:
        host, _, port = running.url.removeprefix("http://").rpartition(":")
        with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
            sock.sendall(b"GET /boom HTTP/1.1\r\nhost: x\r\n\r\n")
            answer = b"".join(iter(lambda: sock.recv(65536), b""))
        assert answer.startswith(b"HTTP/1.1 500 ")
        prompt = "Still there after the bug?"
        result = gptalk("chat", "--url", running.url, prompt)
        assert result.returncode == 0, result.stderr
        assert result.stdout == g.server.expected_reply(prompt) + "\n"
        assert running.process.poll() is None
        code, rest, errors = running.stop(signal.SIGTERM)
    assert code == 0, errors
    assert rest == ""
    first, *others = errors.splitlines()
    assert INTERNAL_ERROR_LINE.fullmatch(first), first
    assert others == ["gptalk: server stopped"]
    assert "LLLL0123" not in errors


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--request-timeout", "nan"),
        ("--request-timeout", "-1"),
        ("--request-timeout", "inf"),
        ("--min-rate", "nan"),
        ("--min-rate", "-inf"),
        ("--min-rate", "0"),
        ("--max-connections", "0"),
        ("--max-connections", "nan"),
        ("--max-connections", "-3"),
        ("--header-timeout", "nan"),
        ("--idle-timeout", "inf"),
    ],
)
def test_bad_server_limits_are_usage_errors(flag: str, value: str) -> None:
    result = gptalk("serve", f"{flag}={value}")  # = lets "-inf" be a value
    assert result.returncode == EXIT_CODES["usage"]
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert errors == [errors[0]]
    assert errors[0].startswith(f"gptalk: error: argument {flag}: expected a ")
    assert repr(value) in errors[0]


def test_service_refusal_exits_4_with_one_line() -> None:
    with serving("--fault", "status=503@text") as running:
        result = gptalk("chat", "--url", running.url, "--total-timeout", "20", "hi")
        running.stop(signal.SIGTERM)
    line = assert_one_error_line(result, EXIT_CODES["service"])
    assert "503" in line


def test_crlf_line_ends_and_keepalive_comments() -> None:
    prompt = "crlf and keep-alives"
    with serving("--fault", "newline=crlf", "--fault", "keepalive=2") as running:
        result = gptalk("chat", "--url", running.url, prompt)
        running.stop(signal.SIGTERM)
    assert result.returncode == 0, result.stderr
    assert result.stdout == g.server.expected_reply(prompt) + "\n"


def test_json_lines(server: Server) -> None:
    prompt = "as JSON, please"
    result = gptalk("chat", "--url", server.url, "--json", prompt)
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("\n")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    *deltas, done = records
    assert all(set(r) == {"event", "text"} and r["event"] == "delta" for r in deltas)
    assert [r["text"] for r in deltas] == g.server.default_reply(prompt)
    assert done == {"event": "done", "text": g.server.expected_reply(prompt)}


def test_no_url_uses_the_built_in_reference_server() -> None:
    result = gptalk("chat", "hi")
    assert result.returncode == 0, result.stderr
    assert result.stdout == g.server.expected_reply("hi") + "\n"
    assert "built-in reference server" in result.stderr
    assert "Traceback" not in result.stderr


def test_prompt_dash_reads_stdin(server: Server) -> None:
    prompt = "a prompt\nover two lines, from stdin"
    result = gptalk("chat", "--url", server.url, "-", stdin=prompt)
    assert result.returncode == 0, result.stderr
    assert result.stdout == g.server.expected_reply(prompt) + "\n"


def test_the_line_end_closing_stdin_is_not_part_of_the_prompt(server: Server) -> None:
    result = gptalk("chat", "--url", server.url, "-", stdin="hi\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == g.server.expected_reply("hi") + "\n"


@pytest.mark.parametrize("json_lines", [False, True])
def test_a_terminal_that_is_not_utf8_gets_escapes_not_a_crash(
    server: Server, json_lines: bool
) -> None:
    args = ["chat", "--url", server.url, *(["--json"] if json_lines else []), "hi"]
    result = subprocess.run(
        [str(GPTALK), *args],
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "ascii"},
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr.decode()
    result.stdout.decode("ascii")  # nothing but ASCII went out
    if json_lines:
        last = json.loads(result.stdout.decode().splitlines()[-1])
        assert last == {"event": "done", "text": g.server.expected_reply("hi")}
    else:
        assert result.stdout.decode() == (
            g.server.expected_reply("hi").encode("ascii", "backslashreplace").decode() + "\n"
        )


# -- usage errors ---------------------------------------------------------------


def test_no_prompt_is_a_usage_error() -> None:
    # One line, which says where the usage is (argparse's own error prints the
    # usage and the error over several lines).
    line = assert_one_error_line(gptalk("chat"), EXIT_CODES["usage"])
    assert "PROMPT" in line
    assert "gptalk chat --help" in line


def test_port_out_of_range_is_a_usage_error() -> None:
    line = assert_one_error_line(gptalk("serve", "--port", "70000"), EXIT_CODES["usage"])
    assert "--port" in line
    assert "gptalk serve --help" in line


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["chat", "--url", "ftp://x", "hi"], "ftp://x"),
        (["serve", "--fault", "bogus"], "'bogus'"),
        (["serve", "--fault", "status=503", "--fault", "cut=x"], "'cut=x'"),
        # A dead --url: the model is refused before any connection is tried.
        (["chat", "--url", "http://127.0.0.1:9", "--model", "a\nb", "hi"], "model"),
    ],
    ids=["ftp-url", "bogus-fault", "bad-fault-value", "model-with-newline"],
)
def test_bad_values_exit_2_with_one_clear_line(args: list[str], named: str) -> None:
    line = assert_one_error_line(gptalk(*args), EXIT_CODES["usage"])
    assert named in line


def test_refused_connection_exits_3_with_one_line() -> None:
    port = free_port()
    result = gptalk(
        "chat",
        "--url",
        f"http://127.0.0.1:{port}",
        "--connect-timeout",
        "2",
        "--total-timeout",
        "10",
        "hi",
    )
    assert_one_error_line(result, EXIT_CODES["network"])


def test_serve_on_a_port_in_use_exits_2_with_a_clear_message() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = gptalk("serve", "--port", str(port), timeout=10)
    line = assert_one_error_line(result, EXIT_CODES["usage"])
    assert str(port) in line


def test_the_top_level_help_lists_every_exit_code() -> None:
    result = gptalk("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: gptalk")
    assert "exit codes:" in result.stdout
    text = " ".join(result.stdout.split())
    for name, code in EXIT_CODES.items():
        assert f"{code} {name}" in text


@pytest.mark.parametrize("command", sorted(COMMAND_EXITS))
def test_each_command_lists_its_own_exit_codes(command: str) -> None:
    args = ["cassette", command] if command in _CASSETTE_TOOLS else [command]
    result = gptalk(*args, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: gptalk {' '.join(args)}")
    epilog = " ".join(result.stdout.split("exit codes:")[1].split())
    listed = {int(code) for code in re.findall(r"(?:^|, )(\d+) ", epilog)}
    assert listed == {EXIT_CODES[name] for name in COMMAND_EXITS[command]}


def test_ctrl_c_on_serve_is_a_normal_stop() -> None:
    # The help says so, and it is so (SIGINT is what Ctrl-C sends).
    assert "exits 0" in " ".join(gptalk("serve", "--help").stdout.split())
    with serving() as server:
        code, _, errors = server.stop(signal.SIGINT)
    assert code == 0, errors
    assert "Traceback" not in errors
