"""Transport errors: the tree beside the core's protocol and service errors.

::

    GPTalkError (gptalk_proto)
    └── TransportError
        ├── ConnectError            TCP connect refused, unreachable, DNS
        │   └── ConnectTimeout
        ├── ProxyError              the proxy refused, failed or is unreachable
        ├── TLSError                the TLS handshake failed
        │   └── TLSVerificationError  the certificate is not trusted / not for the host
        ├── WriteError / ReadError  the connection broke while in use
        └── TransportTimeout
            ├── ConnectTimeout
            ├── ReadTimeout         no byte for longer than the read timeout
            ├── WriteTimeout
            └── DeadlineExceeded    the whole call took longer than its total deadline

Messages never carry proxy credentials: proxies are named by host and port.
"""

from __future__ import annotations

from gptalk_proto import GPTalkError

__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "DeadlineExceeded",
    "InsecureTLSWarning",
    "ProxyError",
    "ReadError",
    "ReadTimeout",
    "TLSError",
    "TLSVerificationError",
    "TransportError",
    "TransportTimeout",
    "WriteError",
    "WriteTimeout",
]


class TransportError(GPTalkError):
    """The network failed us (as opposed to the peer breaking the protocol)."""


class TransportTimeout(TransportError):
    """Some timeout expired."""


class ConnectError(TransportError):
    """Could not open a TCP connection to the server."""


class ConnectTimeout(ConnectError, TransportTimeout):
    """Opening the connection took longer than the connect timeout."""


class ProxyError(TransportError):
    """The proxy refused or failed the tunnel, or could not be reached."""


class TLSError(TransportError):
    """The TLS handshake failed."""


class TLSVerificationError(TLSError):
    """TLS certificate verification failed (untrusted, or for another host)."""


class ReadError(TransportError):
    """The connection broke while reading."""


class WriteError(TransportError):
    """The connection broke while writing."""


class ReadTimeout(TransportTimeout):
    """No byte arrived for longer than the read timeout."""


class WriteTimeout(TransportTimeout):
    """Writing took longer than the write (read) timeout."""


class DeadlineExceeded(TransportTimeout):
    """The whole call ran past its total deadline."""


class InsecureTLSWarning(UserWarning):
    """TLS certificate verification was turned off."""
