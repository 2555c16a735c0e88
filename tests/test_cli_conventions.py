"""The command line's conventions, as a careless user meets them: a bad value
is one usage line (exit 2) found before any work, and leaves nothing behind;
errors show in JSON with --json and start on a line of their own; a load run
stopped by Ctrl-C still reports."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import anyio
import pytest

from gptalk_proto.server import text_reply
from gptalk_transports._cassettes import write_atomically
from gptalk_transports._cli import main
from gptalk_transports._cli.app import build_parser
from gptalk_transports._cli.exits import COMMAND_EXITS, EXIT_CODES
from gptalk_transports._cli.record_proxy import CHAT_ONLY, LISTEN_ONLY
from gptalk_transports._cli.replay_serve import SERVE_ONLY
from gptalk_transports._load import LoadReport, run_load
from gptalk_transports._server.refserver import make_service, serve_in_thread

from .console import ENV, GPTALK, gptalk, listening, read_line
from .replay_cases import CASSETTES
from .test_cli import assert_one_error_line, free_port

PLAIN = str(CASSETTES / "plain-chat.json")
EMPTY = LoadReport(
    seconds=1.0,
    concurrency=1,
    chats=0,
    failed=0,
    requests=0,
    events=0,
    logins=0,
    connections=0,
    errors={},
    chat_times=(),
)


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# -- usage errors: one line, exit 2, nothing left behind ------------------------------


@pytest.mark.parametrize("speed", ["-1", "nan", "inf", "-inf", "0.0000001", "fast"])
def test_a_bad_replay_speed_is_one_usage_line(speed: str) -> None:
    line = assert_one_error_line(gptalk("replay", "--speed", speed, PLAIN), EXIT_CODES["usage"])
    assert "--speed" in line


@pytest.mark.parametrize("gap", ["inf", "nan", "0", "-1"])
def test_a_bad_replay_max_gap_is_one_usage_line(gap: str) -> None:
    line = assert_one_error_line(gptalk("replay", "--max-gap", gap, PLAIN), EXIT_CODES["usage"])
    assert "--max-gap" in line


def test_replay_speed_zero_is_at_once() -> None:
    result = gptalk("replay", "--speed", "0", PLAIN)
    assert result.returncode == 0, result.stderr


def test_record_to_a_folder_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    line = assert_one_error_line(gptalk("record", "-o", str(folder), "hi"), EXIT_CODES["usage"])
    assert "is a directory" in line
    assert _listing(tmp_path) == ["out"]


def test_record_into_a_missing_folder_is_refused_not_created(tmp_path: Path) -> None:
    # Refused, as cp and curl -o do, rather than creating folders silently.
    target = tmp_path / "missing" / "dir" / "x.json"
    line = assert_one_error_line(gptalk("record", "-o", str(target), "hi"), EXIT_CODES["usage"])
    assert "does not exist" in line
    assert _listing(tmp_path) == []


@pytest.mark.parametrize("count", ["0", "-3", "x"])
def test_record_max_events_must_be_positive(tmp_path: Path, count: str) -> None:
    target = tmp_path / "x.json"
    line = assert_one_error_line(
        gptalk("record", "--max-events", count, "-o", str(target), "hi"), EXIT_CODES["usage"]
    )
    assert "--max-events" in line
    assert _listing(tmp_path) == []


def test_to_har_into_a_missing_folder_is_one_usage_line(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "x.har"
    line = assert_one_error_line(
        gptalk("cassette", "to-har", "-o", str(target), PLAIN), EXIT_CODES["usage"]
    )
    assert str(target) in line
    assert _listing(tmp_path) == []


def test_to_har_onto_a_folder_is_one_usage_line(tmp_path: Path) -> None:
    line = assert_one_error_line(
        gptalk("cassette", "to-har", "-o", str(tmp_path), PLAIN), EXIT_CODES["usage"]
    )
    assert "is a directory" in line


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["replay", "--once", PLAIN], "--once is for --serve only"),
        (["replay", "--episodes", PLAIN], "--episodes is for --serve only"),
        (["replay", "--allow-unplayed", PLAIN], "--allow-unplayed is for --serve only"),
        (["replay", "--host", "0.0.0.0", PLAIN], "--host is for --serve only"),
        (["replay", "--port", "8080", PLAIN], "--port is for --serve only"),
        (["record", "--chats", "2", "hi"], "--chats is for --listen only"),
        (["record", "--port", "8080", "hi"], "--port is for --listen only"),
        (["record", "--listen", "--url", "http://127.0.0.1:9", "--model", "m"], "--model is for"),
        (["record", "--listen", "--url", "http://127.0.0.1:9", "--max-events", "3"], "--max-"),
        (["record", "--listen", "--url", "http://127.0.0.1:9", "--idle-timeout", "1"], "--idle"),
    ],
)
def test_a_flag_of_the_other_mode_is_one_usage_line(
    tmp_path: Path, args: list[str], flag: str
) -> None:
    """A flag that only the mode not chosen reads was ignored without a word:
    ``replay --once`` replayed and never said it would not exit by itself.
    Refused before any work: nothing recorded, nothing listened on."""
    if args[0] == "record":
        args = [*args, "-o", str(tmp_path / "out.json")]
    result = gptalk(*args)
    line = assert_one_error_line(result, EXIT_CODES["usage"])
    assert line.startswith(f"gptalk: error: {flag}"), line
    assert result.stdout == ""  # (no replayed text, no 'listening on')
    assert _listing(tmp_path) == []


@pytest.mark.parametrize(
    "command",
    [
        ["serve"],
        ["replay", "--serve", PLAIN],
        ["record", "--listen", "--url", "http://127.0.0.1:9"],
    ],
    ids=["serve", "replay --serve", "record --listen"],
)
def test_a_port_in_use_is_one_usage_line(tmp_path: Path, command: list[str]) -> None:
    """Each server command says, in one line, that it cannot listen there."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = [*command, "--port", str(port)]
        if command[0] == "record":
            args += ["-o", str(tmp_path / "out.json")]
        line = assert_one_error_line(gptalk(*args), EXIT_CODES["usage"])
    assert line.startswith(f"gptalk: error: cannot listen on 127.0.0.1:{port}: "), line
    assert _listing(tmp_path) == []


@pytest.mark.parametrize(
    ("command", "flags"),
    [("replay", SERVE_ONLY), ("record", LISTEN_ONLY), ("record", CHAT_ONLY)],
)
def test_the_refused_flags_defaults_are_the_parsers(command: str, flags: dict[str, object]) -> None:
    """Each refused flag is compared with the parser's own default: else a
    command given no such flag at all would be refused (or one given it let
    through)."""
    parsed = build_parser().parse_args(
        [command, "x", *(["-o", "x"] if command == "record" else [])]
    )
    for flag, default in flags.items():
        assert getattr(parsed, flag[2:].replace("-", "_")) == default, flag


@pytest.mark.parametrize(
    "args",
    [
        ["chat", "--url", "http://[::1", "hi"],
        ["record", "--url", "http://[::1", "-o", "x.json", "hi"],
        ["load", "--url", "http://[::1"],
        ["chat", "--url", "http://127.0.0.1:99999", "hi"],
        ["chat", "--proxy", "http://[::1", "--url", "http://127.0.0.1:9", "hi"],
        ["record", "--proxy", "ftp://x", "--url", "http://127.0.0.1:9", "-o", "x.json", "hi"],
    ],
    ids=["chat-url", "record-url", "load-url", "chat-port", "chat-proxy", "record-proxy"],
)
def test_a_bad_url_is_one_usage_line(tmp_path: Path, args: list[str]) -> None:
    result = subprocess.run(
        [str(GPTALK), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=ENV,
        cwd=tmp_path,
        timeout=30,
        check=False,
    )
    assert_one_error_line(result, EXIT_CODES["usage"])
    assert _listing(tmp_path) == []


def test_a_cacert_that_holds_no_certificate_is_one_usage_line(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("this is not a certificate\n", encoding="utf-8")
    line = assert_one_error_line(
        gptalk("chat", "--url", f"http://127.0.0.1:{free_port()}", "--cacert", str(bundle), "hi"),
        EXIT_CODES["usage"],
    )
    assert "--cacert" in line
    assert "not a CA bundle" in line


def test_a_failed_atomic_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    # The target is a folder with something in it: the final move fails.
    target = tmp_path / "taken"
    target.mkdir()
    (target / "inside").write_text("x", encoding="utf-8")
    with pytest.raises(IsADirectoryError):
        write_atomically(target, "text")
    assert _listing(tmp_path) == ["taken", "taken/inside"]


def test_an_atomic_write_leaves_another_writers_temporary_file_alone(tmp_path: Path) -> None:
    # Two pytest-xdist workers saving one cassette: each writes its own
    # temporary file, so neither truncates nor moves the other's.
    target = tmp_path / "shared.json"
    for theirs in (tmp_path / "shared.json.tmp", tmp_path / f"shared.json.{os.getpid()}.tmp"):
        theirs.write_text("half of another writer's cassette", encoding="utf-8")
    write_atomically(target, "mine")
    assert target.read_text(encoding="utf-8") == "mine"
    assert _listing(tmp_path) == [
        "shared.json",
        f"shared.json.{os.getpid()}.tmp",
        "shared.json.tmp",
    ]
    for theirs in (tmp_path / "shared.json.tmp", tmp_path / f"shared.json.{os.getpid()}.tmp"):
        assert theirs.read_text(encoding="utf-8") == "half of another writer's cassette"


# (argv, the command whose help must list the exit code it gives)
REAL_EXITS = [
    (["chat", "--url", "DEAD", "--connect-timeout", "2", "hi"], "chat"),
    (["serve", "--port", "70000"], "serve"),
    (["load", "--url", "DEAD", "--chats", "1", "--concurrency", "1"], "load"),
    (["record", "--url", "DEAD", "-o", "OUT", "hi"], "record"),
    (["replay", "MISSING"], "replay"),
    (["replay", str(CASSETTES / "cut-mid-event.json"), "--speed", "0"], "replay"),
    (["cassette", "verify", "MISSING"], "verify"),
    (["cassette", "verify", PLAIN], "verify"),
    (["cassette", "lint", "MISSING"], "lint"),
    (["cassette", "to-har", "MISSING"], "to-har"),
    (["cassette", "rerecord", "--only", "bogus"], "rerecord"),
]


@pytest.mark.parametrize(("argv", "command"), REAL_EXITS, ids=[" ".join(a) for a, _ in REAL_EXITS])
def test_the_help_lists_the_exit_code_a_command_gives(
    tmp_path: Path, argv: list[str], command: str
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    names = {"DEAD": dead, "MISSING": str(tmp_path / "nope.json"), "OUT": str(tmp_path / "o.json")}
    result = gptalk(*[names.get(arg, arg) for arg in argv])
    assert "Traceback" not in result.stderr
    kinds = {code: name for name, code in EXIT_CODES.items()}
    assert kinds[result.returncode] in COMMAND_EXITS[command], result.stderr


# (argv, the command, the kind of exit it gives when SIGINT stops it at once):
# the servers that end on a signal have exits of their own to list.
SIGNALLED_EXITS = [
    (["replay", "--serve", PLAIN], "replay", "check"),  # every step unplayed
    (["record", "--listen", "--url", "DEAD", "-o", "OUT"], "record", "cassette"),  # no request
]


@pytest.mark.skipif(os.name != "posix", reason="SIGINT to a child is POSIX")
@pytest.mark.parametrize(
    ("argv", "command", "kind"), SIGNALLED_EXITS, ids=[f"{c} {a[1]}" for a, c, _ in SIGNALLED_EXITS]
)
def test_the_help_lists_the_exit_code_a_server_stopped_by_sigint_gives(
    tmp_path: Path, argv: list[str], command: str, kind: str
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    names = {"DEAD": dead, "OUT": str(tmp_path / "o.json")}
    with listening(*[names.get(arg, arg) for arg in argv]) as (process, _):
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=15)
        assert process.stderr is not None
        errors = process.stderr.read()
    assert "Traceback" not in errors
    assert code == EXIT_CODES[kind], errors
    assert kind in COMMAND_EXITS[command]
    assert not (tmp_path / "o.json").exists()


# -- errors with --json, and after partial text ---------------------------------------


def test_with_json_an_error_is_also_a_json_line_on_stdout() -> None:
    with serve_in_thread(faults=["cut=2"]) as url:
        result = gptalk("chat", "--json", "--url", url, "hi")
    assert result.returncode == EXIT_CODES["protocol"], result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records[0]["event"] == "delta"
    last = records[-1]
    assert last == {
        "event": "error",
        "kind": "protocol",
        "exit": EXIT_CODES["protocol"],
        "message": last["message"],
    }
    # The human line on stderr says the same.
    assert result.stderr.splitlines() == [f"gptalk: error: {last['message']}"]


def test_with_json_a_cassette_error_is_a_json_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    result = gptalk("replay", "--json", str(missing))
    assert result.returncode == EXIT_CODES["cassette"]
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert (record["event"], record["kind"], record["exit"]) == ("error", "cassette", 6)
    assert str(missing) in record["message"]


def test_an_error_after_partial_text_starts_on_a_new_line() -> None:
    with serve_in_thread(faults=["cut=2"]) as url:
        result = gptalk("chat", "--url", url, "hi")
    assert result.returncode == EXIT_CODES["protocol"], result.stderr
    assert result.stdout.strip()
    # The partial reply's line is ended before the error is written.
    assert result.stdout.endswith("\n")
    assert not result.stdout.endswith("\n\n")


def test_replay_of_a_cut_stream_ends_the_line_before_saying_so() -> None:
    result = gptalk("replay", "--speed", "0", str(CASSETTES / "cut-mid-event.json"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert result.stdout.endswith("\n")
    assert "ended with" in result.stderr


# -- load: failures and interruptions --------------------------------------------------


def test_a_load_run_against_a_dead_port_reports_no_latency() -> None:
    out, err = io.StringIO(), io.StringIO()
    url = f"http://127.0.0.1:{free_port()}"
    code = main(
        ["load", "--url", url, "--chats", "2", "--concurrency", "1", "--json"],
        stdout=out,
        stderr=err,
    )
    assert code == EXIT_CODES["check"], err.getvalue()
    figures = json.loads(out.getvalue())
    assert (figures["chats"], figures["failed"]) == (2, 2)
    assert figures["chat_p50_ms"] is None
    assert figures["chat_p99_ms"] is None
    report = EMPTY._replace(chats=2, failed=2, errors={"ConnectError": 2})
    assert "n/a" in report.format()
    assert " 0.0 ms" not in report.format()


def test_stopping_a_load_run_reports_the_figures_so_far() -> None:
    stop = anyio.Event()
    calls = 0

    def clock() -> float:
        # The run reads the clock as chats start and end: stop it after a few.
        nonlocal calls
        calls += 1
        if calls == 30:
            stop.set()
        return calls / 1000

    async def run() -> LoadReport:
        return await run_load(chats=10_000, duration=3600, concurrency=3, clock=clock, stop=stop)

    report = anyio.run(run)
    assert report.interrupted
    assert 0 < report.chats < 10_000
    assert report.failed == 0
    assert report.cut_short <= 3
    assert len(report.chat_times) == report.chats
    assert "interrupted" in report.format()


@pytest.mark.skipif(os.name != "posix", reason="SIGINT to a child is POSIX")
def test_ctrl_c_on_load_prints_the_figures_so_far() -> None:
    process = subprocess.Popen(
        [str(GPTALK), "load", "--duration", "600", "--json"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env=ENV,
    )
    try:
        assert process.stderr is not None
        # This line comes once Ctrl-C is caught.
        assert "built-in reference server" in read_line(process.stderr, timeout=20)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert process.returncode == EXIT_CODES["interrupted"], err
    figures = json.loads(out)
    assert figures["interrupted"] is True
    assert figures["chats"] >= 0
    assert "Traceback" not in err
    assert err.splitlines()[-1] == "gptalk: interrupted"


def test_the_report_format_is_unchanged_for_a_clean_run() -> None:
    report = EMPTY._replace(chats=1, chat_times=(0.002,))
    assert "chat time p50 2.0 ms, p99 2.0 ms" in report.format()
    assert report.as_dict()["chat_p50_ms"] == 2.0


# -- the reply on a terminal ----------------------------------------------------------------

#: What a hostile service might stream: an ANSI colour, a carriage return
#: that would overwrite the line, a C1 CSI, a bidi override, a tag character
#: (format, outside the BMP), DEL and NUL; line feeds and tabs are layout.
HOSTILE_REPLY = (
    "red \x1b[31mtext\x1b[0m over\rwritten \x9b2J rev\u202eersed \U000e0041 \x7f\x00 end\n\tok"
)
STEERING = ("\x1b", "\r", "\x9b", "\u202e", "\U000e0041", "\x7f", "\x00")


def test_a_reply_reaches_the_terminal_escaped() -> None:
    with serve_in_thread(make_service(reply=text_reply(HOSTILE_REPLY, words_per_event=2))) as url:
        result = gptalk("chat", "--url", url, "--no-env-proxy", "hi")
    assert result.returncode == 0, result.stderr
    assert not any(char in result.stdout for char in STEERING), repr(result.stdout)
    # Escaped, not dropped: the text stays readable, its layout kept.
    assert "red \\x1b[31mtext\\x1b[0m over\\rwritten \\x9b2J rev\\u202eersed" in result.stdout
    assert "\\U000e0041 \\x7f\\x00 end\n\tok" in result.stdout


def test_a_reply_in_json_lines_is_escaped_and_still_exact() -> None:
    with serve_in_thread(make_service(reply=text_reply(HOSTILE_REPLY, words_per_event=2))) as url:
        result = gptalk("chat", "--url", url, "--no-env-proxy", "--json", "hi")
    assert result.returncode == 0, result.stderr
    assert not any(char in result.stdout for char in STEERING), repr(result.stdout)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[-1] == {"event": "done", "text": HOSTILE_REPLY}
    assert "".join(line["text"] for line in lines if line["event"] == "delta") == HOSTILE_REPLY
