"""Protocol profiles: what the recorder, the replayer and the cassette tools
know about the API a cassette records.

A :class:`Profile` holds the protocol knowledge that used to be GPTalk's,
wired in: which requests are steps of which kind, which values are secrets
and which are bindings, and how a replayed request is matched to a recorded
one.  The bytes are protocol-neutral whatever the profile: every read is
stored raw with its time, an event stream's events are stored parsed beside
them (``event:``, ``id:``, ``retry:`` and comments stay in the raw bytes, as
recorded), and a JSON response stays whole.

* ``gptalk`` (the default): GPTalk's login, text and stream steps, its
  tokens, fingerprints and headers, matched field by field, headers too.
* ``generic``: any HTTP API with JSON or empty requests and SSE or JSON
  responses (OpenAI, Anthropic and the APIs compatible with them).  Matched
  by method, path, query and JSON body, not headers (SDKs send their
  platform and version there); the usual credentials are secrets, and a
  replayed client with another key is served.

A cassette names its profile (the ``profile`` field; absent means
``gptalk``), so the tools read it from the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from .._errors import LocalProtocolError

__all__ = ["GENERIC", "GPTALK", "PROFILES", "Profile", "profile_named"]

#: Cap on the volatile fields a user may name: each is looked up in every
#: JSON object of every replayed request, so the list stays small.
MAX_VOLATILE_FIELDS = 256


@dataclass(frozen=True)
class Profile:
    """The protocol knowledge of one family of APIs (see the module doc).

    Attributes:
        name: how cassettes, ``--profile`` and the plugin name it.
        steps: request path -> the step's kind (``login``, ``stream``...);
            other paths are ``other``.
        chat_kinds: the kinds the recording proxy counts as chats; empty
            means every exchange counts.
        match_headers: whether replay compares request headers.
        ignored_headers: headers replay never compares (lower case).
        ignored_fields: JSON body fields replay never compares, at any depth.
        bound_fields: JSON body fields the client makes up itself: bound on
            first sight, then held to that value.
        gptalk_secrets: find GPTalk's secrets (tokens in login responses and
            ``?token=``, fingerprints, bearer values, cookies).
        secret_headers: header names whose values are secrets (lower case).
        secret_header_words: a header whose name contains one is a secret.
        secret_query_keys: query keys whose values are secrets.
        secret_fields: JSON string fields (any depth, requests and JSON
            responses) whose values are secrets.
    """

    name: str
    steps: tuple[tuple[str, str], ...] = ()
    chat_kinds: frozenset[str] = frozenset()
    match_headers: bool = False
    # (expect: 100-continue is the client's way to send a body, by its
    # size and its library, not part of what it asks: RFC 9110 section 10.1.1.)
    ignored_headers: frozenset[str] = frozenset({"host", "content-length", "expect"})
    ignored_fields: frozenset[str] = frozenset()
    bound_fields: frozenset[str] = frozenset()
    gptalk_secrets: bool = False
    secret_headers: frozenset[str] = frozenset()
    secret_header_words: tuple[str, ...] = ()
    secret_query_keys: frozenset[str] = frozenset()
    secret_fields: frozenset[str] = frozenset()

    def kind(self, path: str) -> str:
        """The kind of step a request to ``path`` is (``other`` if none)."""
        return next((kind for known, kind in self.steps if known == path), "other")

    def counts_as_chat(self, path: str) -> bool:
        """Whether the recording proxy counts an exchange on ``path``."""
        return not self.chat_kinds or self.kind(path) in self.chat_kinds

    def is_secret_header(self, name: str) -> bool:
        """Whether a header's value is a secret under this profile."""
        lowered = name.lower()
        return lowered in self.secret_headers or any(
            word in lowered for word in self.secret_header_words
        )

    def with_volatile(self, fields: Iterable[str]) -> Profile:
        """This profile, also ignoring the JSON body ``fields`` (by name, at
        any depth) when matching: values that change from run to run."""
        if isinstance(fields, (str, bytes)):
            raise LocalProtocolError("volatile fields must be a list of names, not one string")
        names = tuple(fields)
        if len(names) > MAX_VOLATILE_FIELDS:
            raise LocalProtocolError(f"at most {MAX_VOLATILE_FIELDS} volatile fields")
        for name in names:
            if not isinstance(name, str) or not name:
                raise LocalProtocolError("a volatile field is a non-empty string")
        return replace(self, ignored_fields=self.ignored_fields | frozenset(names))


#: GPTalk: today's behaviour, and the default.
GPTALK = Profile(
    name="gptalk",
    steps=(
        ("/api/chatgpt/user/login", "login"),
        ("/api/chatgpt/chatapi/text", "text"),
        ("/api/chatgpt/chatapi/stream", "stream"),
    ),
    chat_kinds=frozenset({"stream"}),
    match_headers=True,
    ignored_headers=frozenset({"host", "content-length", "expect", "x-auth-timestamp"}),
    ignored_fields=frozenset({"created_at"}),
    bound_fields=frozenset({"fingerprint"}),
    gptalk_secrets=True,
)

#: Query keys and body fields (JSON, or a form's) whose values are secrets,
#: by their whole name: the common names of keys, tokens and passwords
#: (OAuth 2.0's client_secret, refresh_token and id_token among them).  Whole
#: names, not words in them as for headers: a body's "token_type": "bearer"
#: or "max_tokens" is no secret, and a value named one is redacted wherever
#: it appears.
_SECRET_NAMES = frozenset(
    {
        "key",
        "api_key",
        "apikey",
        "api-key",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "auth_token",
        "session_token",
        "client_secret",
        "secret",
        "password",
    }
)

#: Any HTTP API with JSON or empty requests, SSE or JSON responses.
GENERIC = Profile(
    name="generic",
    secret_headers=frozenset(
        {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key"}
    ),
    secret_header_words=("token", "secret", "key"),
    secret_query_keys=_SECRET_NAMES,
    secret_fields=_SECRET_NAMES,
)

#: The profiles by name.
PROFILES = {profile.name: profile for profile in (GPTALK, GENERIC)}


def profile_named(name: str) -> Profile:
    """The profile called ``name``; :class:`LocalProtocolError` naming the
    known ones otherwise."""
    found = PROFILES.get(name) if isinstance(name, str) else None
    if found is None:
        known = ", ".join(sorted(PROFILES))
        raise LocalProtocolError(f"unknown profile {str(name)[:40]!r}: the profiles are {known}")
    return found
