"""Configuration values: timeouts, origins, proxy URLs, TLS contexts."""

from __future__ import annotations

import re
import ssl
import warnings
from collections.abc import Iterable
from typing import Any, NamedTuple
from urllib.parse import quote, unquote, urlsplit

from gptalk_proto import LocalProtocolError, excerpt

from ._exceptions import InsecureTLSWarning

__all__ = [
    "DEFAULT_URL",
    "MAX_TIMEOUT",
    "Origin",
    "ProxyURL",
    "Timeout",
    "check_timeout",
    "make_ssl_context",
]

#: Where the live service was.  It is gone; the reference server stands in.
DEFAULT_URL = "https://gptalk.net"


#: A URL's user and password: what its authority has before an ``@`` (also
#: without a scheme, as in ``user:pw@host``).
_USERINFO = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.-]*:)?//)?[^/?#]*@")


def _reject_crlf(what: str, value: str) -> None:
    if any(c in value for c in "\r\n\x00"):
        raise LocalProtocolError(f"{what} must not contain CR, LF or NUL")


def _check_host_name(what: str, host: str) -> None:
    # getaddrinfo and TLS encode a name with the idna codec, which refuses a
    # label that is empty or over 63 characters (RFC 1035): a UnicodeError
    # at connect time, far from the URL that held it.  (An IP address passes.)
    try:
        host.encode("idna")
    except UnicodeError:
        raise LocalProtocolError(
            f"{what} is not a host name a resolver takes (a label is empty or over 63 characters)"
        ) from None


#: Longest timeout accepted, in seconds (about 31 years): longer than any call
#: can mean, and short enough for every clock and socket API to represent
#: (a socket timeout past ~9.2e9 s overflows the platform's time type).
MAX_TIMEOUT = 1e9


def check_timeout(name: str, value: float | None) -> float | None:
    """A timeout in seconds, checked: ``None`` (off) or a finite number greater
    than 0 and at most :data:`MAX_TIMEOUT`.

    NaN, infinities, zero and negatives are the caller's mistake
    (:class:`~gptalk_proto.LocalProtocolError`): NaN compares false with
    everything, so a deadline of NaN would never expire, and zero or a
    negative would fail every call before it starts.  ``None`` is the one way
    to turn a timeout off.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LocalProtocolError(
            f"the {name} timeout must be a number of seconds or None, not {type(value).__name__}"
        )
    # Written so NaN fails it (every comparison with NaN is false).
    if not 0 < value <= MAX_TIMEOUT:
        raise LocalProtocolError(
            f"the {name} timeout must be a number of seconds greater than 0 and at most "
            f"{MAX_TIMEOUT:g} (or None to turn it off), not {value!r}"
        )
    return float(value)


class _TimeoutFields(NamedTuple):
    connect: float | None = 10.0
    read: float | None = 60.0
    total: float | None = 600.0


class Timeout(_TimeoutFields):
    """Timeouts in seconds; ``None`` turns one off.

    * ``connect``: opening a connection (TCP, proxy handshake and TLS);
    * ``read``: the longest silence between two reads (and the longest write);
    * ``total``: the whole call, retries and backoff included.

    Each is checked on construction (:func:`check_timeout`): NaN, an infinity,
    zero or a negative raise :class:`~gptalk_proto.LocalProtocolError`.
    """

    __slots__ = ()

    def __new__(
        cls,
        connect: float | None = 10.0,
        read: float | None = 60.0,
        total: float | None = 600.0,
    ) -> Timeout:
        return super().__new__(
            cls,
            check_timeout("connect", connect),
            check_timeout("read", read),
            check_timeout("total", total),
        )

    @classmethod
    def _make(cls, iterable: Iterable[Any]) -> Timeout:  # type: ignore[override]
        # _replace() builds through _make: checked like the constructor.  (The
        # stub types _make with a TypeVar that a subclass cannot restate.)
        return cls(*iterable)

    @classmethod
    def coerce(cls, value: Timeout | float | None) -> Timeout:
        """A number sets connect and read alike; None turns all off."""
        if isinstance(value, Timeout):
            return value
        if value is None:
            return cls(None, None, None)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise LocalProtocolError(f"a timeout must be a positive number, not {value!r}")
        return cls(value, value, cls().total)


#: What a base path keeps as it is: RFC 3986's unreserved characters, its
#: sub-delims, ":" and "@" (a path segment's ``pchar``), "/" between segments
#: and "%" of escapes already made.  Anything else is percent-encoded.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
#: A "%" that starts no escape: it stands for itself, so it is encoded too.
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


class Origin(NamedTuple):
    """Where the service is: scheme, host, port, and the base path it is
    mounted under (``""`` at the root; else like ``"/prefix"``, no trailing
    slash).

    Every request goes to the base path plus the protocol's path, as with
    httpx's ``base_url``: ``http://host:8080/prefix`` sends the login to
    ``/prefix/api/chatgpt/user/login``.
    """

    scheme: str
    host: str
    port: int
    path: str = ""

    @classmethod
    def parse(cls, url: str) -> Origin:
        """An origin from an ``http://`` or ``https://`` URL (a path is a base path).

        Raises:
            LocalProtocolError: another scheme, credentials, a bad port or a
                CR/LF in the URL.
        """
        _reject_crlf("the URL", url)
        parts = urlsplit(url)
        # Quoted without a user and password: a URL refused for its scheme
        # or host is checked for credentials only after, and the message
        # would show them.
        shown = _USERINFO.sub(r"\1***@", url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise LocalProtocolError(f"expected an http:// or https:// URL, got {shown!r}")
        if parts.username or parts.password:
            raise LocalProtocolError("the service URL must not carry credentials")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise LocalProtocolError(f"bad port in {shown!r}") from None
        _check_host_name(f"the host {excerpt(parts.hostname)}", parts.hostname)
        # A request target is ASCII without spaces (RFC 9112 section 3.2):
        # encode the rest; "/prefix/" and "/prefix" are the same base.
        path = _LONE_PERCENT.sub("%25", quote(parts.path, safe=_PATH_SAFE)).rstrip("/")
        return cls(parts.scheme, parts.hostname, port, path)

    @property
    def tls(self) -> bool:
        """Whether the origin is ``https``."""
        return self.scheme == "https"

    @property
    def host_header(self) -> str:
        """The ``Host`` header's value: the port only when it is not the default."""
        default = 443 if self.tls else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host_header}{self.path}"


class ProxyURL(NamedTuple):
    """A proxy: ``http://[user:pass@]host:port`` or ``socks5[h]://...``.

    ``repr`` and ``str`` hide the password (and the user name), so a proxy can
    be named in an error message or a log line.
    """

    scheme: str
    host: str
    port: int
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> ProxyURL:
        """A proxy from its URL (``http``, ``socks5`` or ``socks5h``).

        Raises:
            LocalProtocolError: another scheme, a bad port, credentials with
                CR/LF or too long for SOCKS5 (RFC 1929), a URL urlsplit
                refuses, or one that is not UTF-8 text.
        """
        _reject_crlf("the proxy URL", url)
        try:
            # Bytes that are not UTF-8 reach a str from argv or the
            # environment as surrogates: no connection could send them.
            url.encode("utf-8")
            parts = urlsplit(url)  # ValueError: a bracket left open ("http://[::1")
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "socks5", "socks5h") or not parts.hostname:
            raise LocalProtocolError(
                "expected a proxy URL like http://host:port or socks5://user:pass@host:port"
            )
        try:
            port = parts.port or (1080 if parts.scheme.startswith("socks") else 8080)
        except ValueError:
            raise LocalProtocolError("bad port in the proxy URL") from None
        _check_host_name("the proxy URL's host", parts.hostname)  # not quoted: credentials
        username = unquote(parts.username) if parts.username is not None else None
        password = unquote(parts.password) if parts.password is not None else None
        for value in (username, password):
            if value is not None:
                _reject_crlf("proxy credentials", value)
        # RFC 1929: one length byte each for the user name and the password.
        if (
            parts.scheme.startswith("socks")
            and username is not None
            and (len(username.encode()) > 255 or len((password or "").encode()) > 255)
        ):
            raise LocalProtocolError("SOCKS5 credentials are limited to 255 bytes each")
        return cls(parts.scheme, parts.hostname, port, username, password)

    def __str__(self) -> str:
        auth = "***@" if self.username is not None else ""
        return f"{self.scheme}://{auth}{self.host}:{self.port}"

    def __repr__(self) -> str:
        return f"ProxyURL({str(self)!r})"


def make_ssl_context(verify: bool | str | ssl.SSLContext = True) -> ssl.SSLContext:
    """The TLS context for connections to the service.

    ``True``: the system trust store, hostname checks on.  A path: trust that
    CA bundle instead.  An ``SSLContext``: used as given.  ``False``: no
    verification at all, and an :class:`InsecureTLSWarning` says so.  ALPN
    offers ``http/1.1``, the only protocol spoken here.
    """
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify is False:
        warnings.warn(
            "TLS certificate verification is turned off: anyone on the path can read "
            "and change this traffic",
            InsecureTLSWarning,
            stacklevel=3,
        )
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif verify is True:
        context = ssl.create_default_context()
    elif isinstance(verify, str):
        context = ssl.create_default_context(cafile=verify)
    else:
        raise LocalProtocolError("verify must be True, False, a CA bundle path or an SSLContext")
    context.set_alpn_protocols(["http/1.1"])
    return context
