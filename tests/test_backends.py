"""The backends' one exception boundary, and the blocking backend's surface."""

from __future__ import annotations

import socket

import pytest

from gptalk_transports import ConnectError, ReadError
from gptalk_transports._backends.base import broke_while, map_exceptions
from gptalk_transports._backends.sync import BlockingBackend, make_sync_backend


def test_a_mapped_error_becomes_ours_without_the_chain() -> None:
    with pytest.raises(ReadError) as caught, map_exceptions(OSError, broke_while("h:1", False)):
        raise ConnectionResetError("reset by peer")
    assert str(caught.value) == "the connection to h:1 broke while reading: reset by peer"
    assert caught.value.__suppress_context__


def test_a_timeout_is_an_oserror_but_passes_through() -> None:
    with pytest.raises(TimeoutError), map_exceptions(OSError, broke_while("h:1", True)):
        raise TimeoutError


def test_an_error_not_listed_passes_through() -> None:
    with pytest.raises(KeyError), map_exceptions(OSError, broke_while("h:1", True)):
        raise KeyError("x")


def test_the_blocking_backend_maps_a_refused_connection() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
    # Nothing listens there now.
    with pytest.raises(ConnectError, match=f"cannot connect to 127.0.0.1:{port}"):
        BlockingBackend().connect_tcp("127.0.0.1", port, 5.0)


def test_the_blocking_backend_has_the_async_surface() -> None:
    backend = make_sync_backend("auto")
    lock = backend.create_lock()
    assert lock.acquire()
    lock.release()
    with backend.fail_after(0.001), backend.shield():
        backend.sleep(0)
    assert backend.current_time() <= backend.current_time()
    with pytest.raises(Exception, match="unknown backend 'trio'"):
        make_sync_backend("trio")
