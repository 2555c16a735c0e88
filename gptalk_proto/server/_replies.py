"""What the reference server answers: deterministic reply generators.

A reply generator takes ``(prompt, model)`` and returns the reply's pieces;
the server streams their running concatenation, one piece more per event, as
the service did.  The default is a pure function of the prompt, so a test
knows what a chat must return: ``"".join(default_reply(prompt, model))``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["ReplyGenerator", "default_reply", "expected_reply", "sized_reply", "text_reply"]

ReplyGenerator = Callable[[str, str], Sequence[str]]
"""``(prompt, model) -> pieces``; the reply is their concatenation."""

_WORDS = (
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
    "india", "juliett", "kilo", "lima", "mike", "november", "oscar", "papa",
    "quebec", "romeo", "sierra", "tango", "uniform", "victor", "whiskey",
    "x-ray", "yankee", "zulu", "привет", "naïve", "日本語", "café", "über", "ελληνικά",
)  # fmt: skip


#: What the reference server says after quoting the prompt, one word an event.
#: It reads as a demo reply and still carries every character a client must
#: escape or decode: straight quotes, a backslash, a tab, a newline (inside a
#: JSON string, each of them escaped on the wire), accents, CJK and an emoji
#: (outside the Basic Multilingual Plane: a surrogate pair in ``\\u`` escapes).
_DEMO_TAIL = (
    "I am the GPTalk reference server: I echo what you say, one word per event, "
    "as the service streamed.\nSome text to escape and decode: "
    '"quotes", a back\\slash, a\ttab, café, naïve, 日本語, \u2713 and \U0001f600'
)

#: The longest prompt the reply quotes in full; a longer one is cut (the
#: reply's size stays bounded whatever the prompt).
MAX_QUOTED_PROMPT = 60


def default_reply(prompt: str, model: str = "") -> list[str]:
    """The reference server's reply to ``prompt``, a few words per event.

    A demo reply a person expects (``Hello! You said: “Hello, how are you?”``
    and a second line on what the server is), deterministic (a pure function
    of the prompt), with JSON-escaped and non-ASCII characters (quotes, a
    backslash, a tab, a newline, accents, CJK, an emoji) so that every client
    path that escapes or decodes gets exercised.
    """
    quoted = prompt if len(prompt) <= MAX_QUOTED_PROMPT else prompt[: MAX_QUOTED_PROMPT - 3] + "..."
    # The quoted prompt is one piece, whatever spaces it holds.
    pieces = ["Hello! ", "You ", "said: ", f"\u201c{quoted}\u201d\n"]
    words = _DEMO_TAIL.split(" ")
    pieces += [word + " " for word in words[:-1]] + [words[-1]]
    return pieces


def expected_reply(prompt: str, model: str = "") -> str:
    """The whole text the default generator replies to ``prompt``."""
    return "".join(default_reply(prompt, model))


def sized_reply(size: int, events: int) -> ReplyGenerator:
    """A generator of a reply of ``size`` characters in ``events`` pieces.

    For long-stream tests and benchmarks: the stream is about
    ``size * events / 2`` bytes.  The text cycles through the word list, with
    the same escapes and non-ASCII characters as the default.
    """
    if size < 1 or events < 1:
        raise ValueError("size and events must be positive")
    events = min(events, size)
    base = " ".join(_WORDS) + ' "q" \\ \t\n\u2713 '
    text = (base * (size // len(base) + 1))[:size]
    step, extra = divmod(size, events)
    pieces: list[str] = []
    start = 0
    for index in range(events):
        end = start + step + (1 if index < extra else 0)
        pieces.append(text[start:end])
        start = end

    def generate(prompt: str, model: str) -> Sequence[str]:
        return pieces

    return generate


def text_reply(text: str, words_per_event: int = 1) -> ReplyGenerator:
    """A generator that replies ``text`` (e.g. from ``--reply-file``), a few words
    per event."""
    if words_per_event < 1:
        raise ValueError("words_per_event must be positive")
    words = text.split(" ")
    pieces = [
        " ".join(words[i : i + words_per_event]) + (" " if i + words_per_event < len(words) else "")
        for i in range(0, len(words), words_per_event)
    ]
    pieces = [piece for piece in pieces if piece]

    def generate(prompt: str, model: str) -> Sequence[str]:
        return pieces

    return generate
