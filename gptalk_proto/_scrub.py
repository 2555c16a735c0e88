"""Known secrets out of errors, in one place.

A server may echo what it was sent -- the bearer token, the stream token, the
login fingerprint, a proxy's ``Basic`` credentials -- in an error envelope's
``msg``, a status reason or a header, and a message that quotes it would put
the secret on a terminal or in a log.  The chat machine knows those values, so
every error it raises passes through :func:`scrub_error` first (see
:meth:`Chat.next_event <gptalk_proto.Chat.next_event>`): each known secret,
in every spelling it may take on the wire, becomes a placeholder naming its
kind, in the message, the attributes and the whole ``__cause__`` /
``__context__`` chain.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from urllib.parse import quote

from ._errors import GPTalkError

__all__ = ["PLACEHOLDER", "hiding", "scrub_error", "scrub_text", "secret_spellings"]

#: What a placeholder looks like: ``<kind-N>`` or ``<kN>`` as a cassette's
#: redaction writes them (lint leaves these alone, and the chat accepts one
#: where a token goes, so a redacted cassette replays).
PLACEHOLDER = re.compile(r"<[a-z-]+-\d+>\.*|<[a-z]\d+>\.*")


def secret_spellings(secret: str) -> Iterator[str]:
    """How a secret may be spelled on the wire: as is, JSON-escaped (both with
    and without \\u escapes), and percent-encoded in a URL."""
    yield secret
    yield json.dumps(secret)[1:-1]
    yield json.dumps(secret, ensure_ascii=False)[1:-1]
    yield quote(secret, safe="")


#: Exceptions followed down a ``__cause__`` / ``__context__`` chain; a chain
#: is a few links long, the cap only guards against a pathological one.
MAX_CHAIN = 64


#: Secrets at least this long are replaced wherever they stand.  Shorter ones
#: (a four-letter proxy password, a test's one-letter token) only where they
#: stand alone, between characters that cannot be part of a token: replaced
#: anywhere, they would cut ordinary words apart ("pass" in "passed").
MIN_ANYWHERE = 8

# The characters of an RFC 6750 b64token, padding included: a short secret
# next to one of them is part of a longer word, not the secret.
_WORD = r"[A-Za-z0-9\-._~+/=]"


def _table(
    secrets: Iterable[tuple[str, str]], *, anywhere_from: int = MIN_ANYWHERE
) -> list[tuple[str | re.Pattern[str], str]]:
    # Spellings of ``anywhere_from`` characters and more are replaced wherever
    # they stand; shorter ones only alone (see MIN_ANYWHERE).
    pairs: dict[str, str] = {}
    for kind, secret in secrets:
        if secret:
            for spelling in secret_spellings(secret):
                pairs.setdefault(spelling, f"<{kind}>")
    # Longest first, so a secret inside a longer one does not break it up.
    table: list[tuple[str | re.Pattern[str], str]] = []
    for spelling, placeholder in sorted(pairs.items(), key=lambda pair: -len(pair[0])):
        if len(spelling) >= anywhere_from:
            table.append((spelling, placeholder))
        else:
            alone = re.compile(f"(?<!{_WORD}){re.escape(spelling)}(?!{_WORD})")
            table.append((alone, placeholder))
    return table


def _apply(text: str, table: list[tuple[str | re.Pattern[str], str]]) -> str:
    for secret, placeholder in table:
        if isinstance(secret, str):
            if secret in text:
                text = text.replace(secret, placeholder)
        else:
            text = secret.sub(placeholder, text)
    return text


def hiding(secrets: Iterable[tuple[str, str]]) -> Callable[[str], str]:
    """``text -> text`` with every ``(kind, value)`` secret, in each of its
    spellings, replaced by ``<kind>`` wherever it stands, however short (the
    caller named these; see MIN_ANYWHERE for the secrets the toolkit finds
    on its own).  The table is built once, for many texts."""
    table = _table(secrets, anywhere_from=0)
    if not table:
        return _unchanged
    return lambda text: _apply(text, table)


def _unchanged(text: str) -> str:
    return text


def scrub_text(text: str, secrets: Iterable[tuple[str, str]]) -> str:
    """``text`` with every ``(kind, value)`` secret replaced by ``<kind>``."""
    return _apply(text, _table(secrets))


def scrub_error(error: BaseException, secrets: Iterable[tuple[str, str]]) -> None:
    """Take the ``(kind, value)`` secrets out of ``error`` and its chain, in place.

    The toolkit's own errors (:class:`GPTalkError`) along the ``__cause__``
    and ``__context__`` links are scrubbed: their ``args`` and every str
    attribute (``msg``, ``url``, ...).  Other exceptions in the chain carry no
    server text and are left as they are.
    """
    table = _table(secrets)
    if not table:
        return
    todo: list[BaseException] = [error]
    seen: set[int] = set()
    while todo and len(seen) < MAX_CHAIN:
        link = todo.pop()
        if id(link) in seen:
            continue
        seen.add(id(link))
        if isinstance(link, GPTalkError):
            link.args = tuple(_apply(a, table) if isinstance(a, str) else a for a in link.args)
            for name, value in vars(link).items():
                if isinstance(value, str):
                    setattr(link, name, _apply(value, table))
        todo += [e for e in (link.__cause__, link.__context__) if e is not None]
