"""What the commands share: argument types, TLS and timeout options, the event printer."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import signal
import ssl
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import anyio
import anyio.abc

from gptalk_proto import (
    ChatDone,
    LocalProtocolError,
    TextDelta,
    TextRewritten,
    excerpt,
)

from .._config import MAX_TIMEOUT, Origin, ProxyURL, Timeout, check_timeout, make_ssl_context
from .._server.refserver import LOGGER_NAME
from .exits import (
    UsageError,
)

#: The help of --no-env-proxy (chat and record).
NO_ENV_PROXY_HELP = (
    "ignore HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY (used by default when "
    "--url is given and --proxy is not)"
)


@contextmanager
def server_log(err: TextIO) -> Iterator[None]:
    """While a server command runs, its servers' log lines (an internal
    error, a listener out of file descriptors) go to ``err`` as gptalk's
    own lines."""
    log = logging.StreamHandler(err)
    log.setFormatter(logging.Formatter("gptalk: %(message)s"))
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(log)
    try:
        yield
    finally:
        logger.removeHandler(log)


def cannot_listen(args: argparse.Namespace, error: OSError) -> UsageError:
    """A server command's failure to listen on ``args.host``:``args.port``."""
    return UsageError(f"cannot listen on {args.host}:{args.port}: {error.strerror}")


async def start_listening(
    group: anyio.abc.TaskGroup,
    start: Callable[[anyio.abc.TaskStatus[str]], Coroutine[Any, Any, object]],
    args: argparse.Namespace,
    out: TextIO,
) -> UsageError | None:
    """Start a server command's server in ``group`` and print its ready line
    ('listening on URL'); when it cannot listen on ``args.host``:``args.port``,
    cancel the group and return the UsageError (raised by the caller after
    the group: inside it, it would reach main() wrapped in an ExceptionGroup)."""
    try:
        url = await group.start(start)
    except OSError as exc:
        group.cancel_scope.cancel()
        return cannot_listen(args, exc)
    out.write(f"listening on {url}\n")
    out.flush()
    return None


async def serve_until_stopped(
    start: Callable[[anyio.abc.TaskStatus[str]], Coroutine[Any, Any, object]],
    args: argparse.Namespace,
    out: TextIO,
    err: TextIO,
    done: anyio.Event | None = None,
    *,
    before_stop: Callable[[], Awaitable[object]] | None = None,
) -> None:
    """Run a server command's server (see :func:`start_listening`) until
    SIGINT or SIGTERM, or ``done`` is set, then await ``before_stop`` if
    given and stop it; raise the UsageError when it cannot listen.  Its log
    lines go to stderr as gptalk's, and signals are caught from before the
    ready line: a supervisor may stop the server the moment it reads it."""
    stop = done if done is not None else anyio.Event()
    with server_log(err), anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with anyio.create_task_group() as group:
            failure = await start_listening(group, start, args, out)
            if failure is None:

                async def on_signal() -> None:
                    async for _ in signals:
                        break
                    stop.set()

                group.start_soon(on_signal)
                await stop.wait()
                if before_stop is not None:
                    await before_stop()
                group.cancel_scope.cancel()
    if failure is not None:
        raise failure


def refuse_unused(args: argparse.Namespace, flags: Mapping[str, object], why: str) -> None:
    """A UsageError, ``"<flag> <why>"``, for the first of ``flags`` (each
    with its default) given a value other than its default: it belongs to a
    mode that was not chosen, and would otherwise be ignored without a word
    (a user who wrote ``replay --once`` without ``--serve`` expects an exit)."""
    for flag, default in flags.items():
        if getattr(args, flag[2:].replace("-", "_")) != default:
            raise UsageError(f"{flag} {why}")


#: The longest prompt read from stdin, in characters: far past what a service
#: takes in one request (the reference server's limit is 1 MiB), and a bound
#: for /dev/zero or an endless pipe, which were read until memory ran out.
MAX_STDIN_PROMPT = 16 * 1024 * 1024


def _read_prompt(prompt: str, stdin: TextIO) -> str:
    text = prompt
    if prompt == "-":
        text = stdin.read(MAX_STDIN_PROMPT + 1)
        if len(text) > MAX_STDIN_PROMPT:
            raise UsageError(f"the prompt on stdin is over {MAX_STDIN_PROMPT} characters")
        # The line end that ends the input is not part of the prompt.
        text = text.rstrip("\r\n")
    if not text.strip():
        raise UsageError("the prompt is empty")
    return text


def _timeout(args: argparse.Namespace) -> Timeout:
    return Timeout(connect=args.connect_timeout, read=args.read_timeout, total=args.total_timeout)


def _verify(args: argparse.Namespace) -> bool | ssl.SSLContext:
    if args.insecure:
        return False
    if args.cacert:
        if not Path(args.cacert).is_file():
            raise UsageError(f"--cacert {args.cacert}: no such file")
        # Loaded now: a file that holds no certificate is the user's mistake,
        # found before anything starts.
        try:
            return make_ssl_context(str(args.cacert))
        except (OSError, ssl.SSLError, ValueError) as exc:
            reason = (
                getattr(exc, "reason", None)
                or getattr(exc, "strerror", None)
                or "no certificate in it"
            )
            raise UsageError(f"--cacert {args.cacert}: not a CA bundle ({reason})") from None
    return True


# A reply's line structure is kept; everything else a terminal would act on
# is shown escaped (see terminal_text).
_LAYOUT = re.compile(r"([\n\t])")


def terminal_text(text: str, *, json_form: bool = False) -> str:
    """``text`` with every character that could steer a terminal escaped.

    What the server streams is shown as it is, but for the characters that
    ``str.isprintable`` refuses: C0 and C1 controls (ESC starts ANSI
    sequences, CR overwrites a line), DEL, and format characters such as the
    bidi overrides (U+202E reverses what follows).  Line feeds and tabs stay.
    Escapes are Python's (``\\x1b``), or JSON's (``\\u001b``) for a line that
    ``json_form`` says is JSON, so the line still parses to the same text.
    """
    if text.isprintable():
        return text
    parts = _LAYOUT.split(text)
    for index, part in enumerate(parts):
        if index % 2 or part.isprintable():
            continue  # a line feed or a tab, or nothing to escape
        parts[index] = "".join(
            char if char.isprintable() else _escape(char, json_form) for char in part
        )
    return "".join(parts)


def _escape(char: str, json_form: bool) -> str:
    if not json_form:
        return char.encode("unicode_escape").decode("ascii")
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # RFC 8259 section 7: a UTF-16 surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


class _Printer:
    """Writes a chat's events to stdout as text or JSON lines."""

    def __init__(self, out: TextIO, err: TextIO, as_json: bool) -> None:
        self.out = out
        self.err = err
        self.as_json = as_json
        # JSON lines stay exact on a terminal that is not UTF-8: escape instead.
        encoding = (getattr(out, "encoding", None) or "utf-8").lower().replace("_", "-")
        self.ascii_only = encoding not in ("utf-8", "utf8")

    def __call__(self, event: object) -> None:
        if self.as_json:
            record: dict[str, Any] | None = None
            if isinstance(event, TextDelta):
                record = {"event": "delta", "text": event.text}
            elif isinstance(event, TextRewritten):
                record = {"event": "rewrite", "text": event.text, "previous": event.previous}
            elif isinstance(event, ChatDone):
                record = {"event": "done", "text": event.text}
            if record is not None:
                line = json.dumps(record, ensure_ascii=self.ascii_only)
                # json.dumps escapes C0 controls only; C1 controls and bidi
                # overrides would reach the terminal raw.
                self.out.write(terminal_text(line, json_form=True) + "\n")
                self.out.flush()
            return
        if isinstance(event, TextDelta):
            self.out.write(terminal_text(event.text))
        elif isinstance(event, TextRewritten):
            self.err.write("\ngptalk: the service rewrote its reply; the whole new text follows\n")
            self.out.write("\n" + terminal_text(event.text))
        elif isinstance(event, ChatDone):
            self.out.write("\n")
        self.out.flush()


def _positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    # nan compares false with everything: it would pass "<= 0" and then turn
    # every deadline off; inf would too.
    if not math.isfinite(number) or number <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite positive number, got {value!r}")
    return number


def _timeout_seconds(value: str) -> float:
    # The rule Timeout(...) applies (check_timeout): finite, above 0.
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    try:
        checked = check_timeout("", number)
    except LocalProtocolError:
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds greater than 0 and at most {MAX_TIMEOUT:g}, "
            f"got {value!r}"
        ) from None
    assert checked is not None
    return checked


def _count(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value!r}")
    return number


def _url(value: str) -> str:
    """A service URL the client can use (checked before anything starts)."""
    try:
        Origin.parse(value)
    except LocalProtocolError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    except ValueError as exc:
        # urlsplit's own refusal, for a bracket left open: http://[::1
        raise argparse.ArgumentTypeError(f"not a URL ({exc}): {value!r}") from None
    return value


def _proxy_url(value: str) -> str:
    """A proxy URL (checked before anything starts; the message hides credentials)."""
    try:
        ProxyURL.parse(value)
    except (LocalProtocolError, ValueError):
        raise argparse.ArgumentTypeError(
            "expected a proxy URL like http://host:port or socks5://user:pass@host:port"
        ) from None
    return value


def _port(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {value!r}") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError("expected a port from 0 to 65535")
    return number


#: The longest host name (RFC 1035 section 2.3.4); an address is shorter.
MAX_HOST_NAME = 253


def _listen_host(value: str) -> str:
    """The address a server command listens on (--host): refused here when no
    resolver could take it, rather than as an internal error from inside the
    server (the idna codec's UnicodeError), and so that 'cannot listen on
    HOST' is one short printable line."""
    try:
        value.encode("idna")  # a label empty or over 63 characters; not UTF-8
        usable = value.isprintable() and len(value) <= MAX_HOST_NAME
    except UnicodeError:
        usable = False
    if not usable:
        raise argparse.ArgumentTypeError(f"not a host name or address: {excerpt(value)}")
    return value


def _output(name: str) -> Path:
    """Where ``-o`` says to write: refused before any work if it cannot be.

    The folder must exist (no folder is created behind the user's back) and
    the name must not be a folder.
    """
    path = Path(name)
    if path.is_dir():
        raise UsageError(f"-o {name}: is a directory; give a file name")
    folder = path.parent
    if not folder.is_dir():
        raise UsageError(f"-o {name}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"-o {name}: cannot write in the folder {folder}")
    return path


def _write(path: Path, write: Callable[[Path], None]) -> None:
    # A failure at the very end (a full disk, a race) is still about -o.
    try:
        write(path)
    except OSError as exc:
        raise UsageError(f"-o {path}: cannot write it: {exc.strerror or exc}") from None
