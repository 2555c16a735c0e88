"""``gptalk chat``: stream a reply to stdout."""

from __future__ import annotations

import argparse
from contextlib import AsyncExitStack
from typing import Any, TextIO

import anyio

from gptalk_proto import check_text_value

from .._async.client import AsyncClient
from .._server.refserver import (
    serve_in_background,
)
from .common import (
    NO_ENV_PROXY_HELP,
    _Printer,
    _proxy_url,
    _read_prompt,
    _timeout,
    _timeout_seconds,
    _url,
    _verify,
)
from .exits import (
    _add_command,
)

__all__ = ["add_command", "run"]


async def _chat(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    prompt = _read_prompt(args.prompt, stdin)
    # Refuse bad values before anything starts (the built-in server included).
    check_text_value("--model", args.model)
    verify = _verify(args)
    messages = [{"role": "user", "content": prompt}]
    if args.system:
        messages.insert(0, {"role": "system", "content": args.system})
    printer = _Printer(out, err, args.json)
    async with AsyncExitStack() as stack:
        url = args.url
        if url is None:
            url = await stack.enter_async_context(serve_in_background())
            err.write(f"gptalk: no --url given; using the built-in reference server at {url}\n")
            err.flush()
        client = await stack.enter_async_context(
            AsyncClient(
                url,
                proxy=args.proxy,
                timeout=_timeout(args),
                verify=verify,
                # The built-in server is in this process: no proxy between.
                trust_env=args.url is not None and not args.no_env_proxy,
            )
        )
        async with client.events(messages, model=args.model) as events:
            async for event in events:
                printer(event)
    return 0


def run(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    """Run the command (the handler ``main`` calls)."""
    return anyio.run(_chat, args, stdin, out, err)


def add_command(commands: argparse._SubParsersAction[Any]) -> None:
    """Add the command and its arguments to ``commands``."""
    chat = _add_command(
        commands,
        "chat",
        "stream a reply to stdout",
        "Stream the reply to PROMPT to stdout as it arrives. With no --url, "
        "start the built-in reference server in-process and chat with it.",
    )
    chat.add_argument("prompt", metavar="PROMPT", help="the prompt; - reads it from stdin")
    chat.add_argument(
        "--url", type=_url, help="the service URL (default: the built-in reference server)"
    )
    chat.add_argument(
        "--proxy", type=_proxy_url, help="http://[user:pass@]host:port, socks5:// or socks5h://"
    )
    chat.add_argument("--no-env-proxy", action="store_true", help=NO_ENV_PROXY_HELP)
    chat.add_argument("--model", default="gpt-3.5-turbo", help="the model (default: %(default)s)")
    chat.add_argument("--system", metavar="TEXT", help="a system message before the prompt")
    chat.add_argument("--json", action="store_true", help="print events as JSON lines")
    chat.add_argument("--cacert", metavar="FILE", help="trust this CA bundle for TLS")
    chat.add_argument(
        "--insecure", action="store_true", help="do not verify TLS certificates (warns)"
    )
    chat.add_argument(
        "--connect-timeout",
        type=_timeout_seconds,
        default=10.0,
        metavar="S",
        help="seconds to open a connection (default: %(default)s)",
    )
    chat.add_argument(
        "--read-timeout",
        type=_timeout_seconds,
        default=60.0,
        metavar="S",
        help="seconds without a byte before a chat fails (default: %(default)s)",
    )
    chat.add_argument(
        "--total-timeout",
        type=_timeout_seconds,
        default=600.0,
        metavar="S",
        help="seconds for a whole chat, retries included (default: %(default)s)",
    )
    chat.set_defaults(handler=run)
