"""Shared fixtures: a seeded service, fresh credentials, fingerprints."""

from __future__ import annotations

import gc
import itertools
import os
import random
import threading
import time
from collections.abc import Callable, Iterator

import pytest

import gptalk_proto as g
import gptalk_proto.server
from gptalk_transports._server.refserver import serve_in_thread

from . import clients

NOW = 1_700_000_000.0


@pytest.fixture
def service() -> g.server.Service:
    """A reference service with seeded entropy (deterministic tokens)."""
    return g.server.Service(entropy=random.Random(1234).randbytes)


@pytest.fixture
def credentials() -> g.Credentials:
    return g.Credentials()


@pytest.fixture
def fingerprint() -> Callable[[], str]:
    """A factory of distinct valid fingerprints."""
    counter = itertools.count()
    return lambda: f"{next(counter):032x}"


@pytest.fixture
def make_chat(credentials: g.Credentials, fingerprint: Callable[[], str]) -> Callable[..., g.Chat]:
    """Build a Chat sharing the fixture's credentials."""

    def make(prompt: object = "Hello, how are you?", **kwargs: object) -> g.Chat:
        kwargs.setdefault("credentials", credentials)
        kwargs.setdefault("fingerprint", fingerprint())
        return g.Chat(prompt, **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """Fail the test if it leaves a file descriptor or a thread behind."""
    gc.collect()
    fds = clients.open_fds()
    threads = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while True:
        gc.collect()
        leaked_fds = clients.open_fds() - fds
        leaked_threads = {t for t in set(threading.enumerate()) - threads if t.is_alive()}
        if not leaked_fds and not leaked_threads:
            return
        if time.monotonic() > deadline:
            targets = {fd: _describe_fd(fd) for fd in leaked_fds}
            raise AssertionError(f"leaked fds {targets} and threads {leaked_threads}")
        time.sleep(0.05)


def _describe_fd(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "?"


@pytest.fixture(scope="session")
def reference_url() -> Iterator[str]:
    """One healthy reference server (in a thread) for tests that only need a peer."""
    with serve_in_thread() as url:
        yield url


# TLS: a private CA (trustme) and the reference server behind it, shared by
# test_tls.py and test_proxies.py.  The imports live here so the block above
# stays as it is.
import ssl  # noqa: E402

import trustme  # noqa: E402


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    """A throwaway certificate authority."""
    return trustme.CA()


@pytest.fixture(scope="session")
def tls_ca_file(tls_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The CA's certificate as a PEM file (for ``verify="path"``)."""
    path = tmp_path_factory.mktemp("tls") / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture(scope="session")
def tls_server_context(tls_ca: trustme.CA) -> ssl.SSLContext:
    """A server context with a certificate for 127.0.0.1 and localhost."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def tls_client_context(tls_ca: trustme.CA) -> ssl.SSLContext:
    """A client context trusting the CA (and nothing else)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # hostname checks on, no system CAs
    tls_ca.configure_trust(context)
    return context


@pytest.fixture(scope="session")
def tls_reference_url(tls_server_context: ssl.SSLContext) -> Iterator[str]:
    """The reference server over TLS: ``https://127.0.0.1:PORT``."""
    with serve_in_thread(ssl_context=tls_server_context) as url:
        yield url
