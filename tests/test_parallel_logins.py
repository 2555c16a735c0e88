"""Logins in parallel: one per five chats that wait for a token, all at once.

The core decides (``Chat.claim``: a use of a token, a login of the chat's own,
or a seat on another chat's login); the drivers only wait.  The reference
service enforces the five-use rule, so an over-used token shows as a refusal
and an extra login.  Every test is bounded by counts and events, not by time.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

import anyio
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import gptalk_proto as g
import gptalk_proto.server
from gptalk_proto._credentials import Ticket
from gptalk_proto.testing import MemoryPair, run_chat
from gptalk_transports import AsyncClient, Client
from gptalk_transports._server.refserver import make_service, serve_in_thread

from . import clients

NOW = 1_700_000_000.0


def _claim(chat: g.Chat, name: str, now: float = NOW) -> object:
    """What a driver does: claim, and give a handle when asked for one."""
    wait = chat.claim(now)
    if wait is g.NEED_HANDLE:
        wait = chat.claim(now, name)
    return wait


def _uses_of_every_token(credentials: g.Credentials) -> list[int]:
    return [entry.uses for entry in credentials._tokens]


# -- the core's decisions ----------------------------------------------------------------


def test_twelve_claims_make_three_logins_and_no_token_serves_more_than_five(
    service: g.server.Service, credentials: g.Credentials, make_chat: Callable[..., g.Chat]
) -> None:
    chats = [make_chat(f"chat {n}") for n in range(12)]
    waits = [_claim(chat, f"login {n}") for n, chat in enumerate(chats)]
    loggers = [chat for chat in chats if chat.logging_in]
    # Chats 0, 5 and 10 log in; the others hold seats on those logins.
    assert loggers == [chats[0], chats[5], chats[10]]
    assert waits == [None, *["login 0"] * 4, None, *["login 5"] * 4, None, "login 10"]
    assert credentials.pending_logins == 3
    assert credentials.seated == 9
    # A thirteenth chat takes the last seat of the third login.
    assert _claim(make_chat(), "login 12") == "login 10"
    for chat in loggers:
        events = run_chat(chat, service, now=NOW)
        assert isinstance(events[0], g.LoggedIn)
        assert isinstance(events[-1], g.ChatDone)
    assert credentials.pending_logins == 0
    # Woken, every seated chat takes the use its seat reserved.
    for chat in chats:
        if not chat.logging_in and chat.state is g.ClientState.START:
            assert chat.claim(NOW) is None
            events = run_chat(chat, service, now=NOW)
            assert not isinstance(events[0], g.LoggedIn)
            assert isinstance(events[-1], g.ChatDone)
    assert service.counts["login"] == 3
    assert service.counts["text"] == 12
    assert credentials.logins == 3
    assert all(uses <= 5 for uses in _uses_of_every_token(credentials))


def test_a_seat_woken_before_its_login_ends_keeps_waiting(
    make_chat: Callable[..., g.Chat],
) -> None:
    first, second = make_chat(), make_chat()
    assert _claim(first, "h") is None
    assert _claim(second, "other") == "h"
    assert second.claim(NOW) == "h"  # a spurious wake-up: still the same seat
    with pytest.raises(g.LocalProtocolError, match="seat"):
        second.next_request(NOW)
    assert first.needs_login(NOW)
    assert not second.needs_login(NOW)


def test_a_failed_login_sends_its_seated_chats_to_claim_again(
    service: g.server.Service, credentials: g.Credentials, make_chat: Callable[..., g.Chat]
) -> None:
    failing = g.server.Service(entropy=random.Random(2).randbytes, faults=["status=500@login"])
    chats = [make_chat(f"chat {n}") for n in range(5)]
    assert [_claim(chat, f"h{n}") for n, chat in enumerate(chats)] == [None, *["h0"] * 4]
    with pytest.raises(g.HTTPStatusError):
        run_chat(chats[0], failing, now=NOW)
    chats[0].release_claim()  # what the driver does when the chat ends
    assert credentials.pending_logins == 0
    # The first to wake logs in; the others take seats on that login.
    assert [_claim(chat, f"again {n}") for n, chat in enumerate(chats[1:])] == [
        None,
        *["again 0"] * 3,
    ]
    run_chat(chats[1], service, now=NOW)
    for chat in chats[2:]:
        assert chat.claim(NOW) is None
        run_chat(chat, service, now=NOW)
    assert service.counts["login"] == 1
    assert service.counts["text"] == 4


def test_a_released_seat_gives_its_use_to_the_next_chat(
    service: g.server.Service, credentials: g.Credentials, make_chat: Callable[..., g.Chat]
) -> None:
    chats = [make_chat(f"chat {n}") for n in range(5)]
    for n, chat in enumerate(chats):
        _claim(chat, f"h{n}")
    chats[3].release_claim()  # cancelled while it waited
    chats[3].release_claim()  # idempotent
    assert credentials.seated == 3
    run_chat(chats[0], service, now=NOW)
    # A released seat after the login ended gives back its reserved use too.
    chats[4].release_claim()
    late = [make_chat("late 1"), make_chat("late 2")]
    for chat in (*chats[1:3], *late):
        assert chat.claim(NOW) is None
        run_chat(chat, service, now=NOW)
    assert service.counts["login"] == 1
    assert credentials.uses == 5
    assert not credentials.usable(NOW)


def test_a_login_chat_ended_before_its_text_request_leaves_its_token(
    service: g.server.Service, credentials: g.Credentials, make_chat: Callable[..., g.Chat]
) -> None:
    chats = [make_chat(f"chat {n}") for n in range(3)]
    for n, chat in enumerate(chats):
        _claim(chat, f"h{n}")
    # Run only the login exchange, then stop (cancelled before the text request).
    for event in MemoryPair(chats[0], service, now=NOW).events():
        if isinstance(event, g.LoggedIn):
            break
    chats[0].release_claim()
    assert credentials.logins == 1
    assert credentials.uses == 0
    for chat in chats[1:]:
        assert chat.claim(NOW) is None
        run_chat(chat, service, now=NOW)
    assert service.counts["login"] == 1
    assert credentials.uses == 2


def test_a_token_past_its_expiry_when_the_seat_wakes_is_not_used(
    credentials: g.Credentials, make_chat: Callable[..., g.Chat]
) -> None:
    service = g.server.Service(entropy=random.Random(3).randbytes)
    first, second = make_chat(), make_chat()
    _claim(first, "h1")
    _claim(second, "h2")
    run_chat(first, service, now=NOW)
    later = NOW + service.token_ttl  # the seat wakes after the token expired
    assert second.claim(later) is g.NEED_HANDLE
    assert second.claim(later, "h2") is None
    assert second.logging_in
    assert isinstance(run_chat(second, service, now=later)[0], g.LoggedIn)
    assert service.counts["login"] == 2


def test_pending_logins_are_capped(make_chat: Callable[..., g.Chat]) -> None:
    credentials = g.Credentials(max_uses=1, max_pending_logins=2)
    chats = [make_chat(credentials=credentials) for _ in range(4)]
    assert [_claim(chat, f"h{n}") for n, chat in enumerate(chats)] == [None, None, "h0", "h0"]
    assert credentials.pending_logins == 2
    assert credentials.seated == 0  # the last two wait without a seat


def test_refused_token_is_forgotten_but_not_the_others(
    credentials: g.Credentials,
) -> None:
    credentials.store("a", NOW + 1000)
    credentials.store("b", NOW + 1000)
    credentials.invalidate("b")
    assert credentials.token is None  # the newest was refused
    assert credentials.acquire(NOW) == "a"
    credentials.invalidate()
    assert not credentials.usable(NOW)


# -- over sockets, on every backend -----------------------------------------------------


@pytest.mark.parametrize("kind", clients.KINDS)
def test_twelve_concurrent_chats_make_exactly_three_logins(kind: str, no_leaks: None) -> None:
    service = make_service()
    credentials = g.Credentials()
    with serve_in_thread(service) as url:
        prompts = [f"twelve {n}" for n in range(12)]
        replies, _ = clients.many(kind, url, prompts, credentials=credentials)
    assert replies == [g.server.expected_reply(p) for p in prompts]
    # The service enforces five uses a token: no refusal, so none was over-used.
    assert service.counts["login"] == 3
    assert service.counts["text"] == 12
    assert credentials.logins == 3
    assert credentials.pending_logins == 0


@pytest.mark.parametrize("kind", clients.KINDS)
def test_a_login_that_fails_while_others_wait(kind: str, no_leaks: None) -> None:
    # The first login the service sees is refused (400: not retried): only its
    # chat fails; the chats seated on it log in again among themselves.
    service = make_service(faults=["status=400@login#1"])
    credentials = g.Credentials()
    prompts = [f"ten {n}" for n in range(10)]
    with serve_in_thread(service) as url:
        if kind == "blocking":
            outcomes = _blocking_outcomes(url, prompts, credentials)
        else:

            async def main(backend: str) -> list[object]:
                results: list[object] = [None] * len(prompts)
                async with AsyncClient(url, backend=backend, credentials=credentials) as client:

                    async def one(index: int) -> None:
                        try:
                            results[index] = await client.chat(prompts[index])
                        except g.HTTPStatusError as error:
                            results[index] = error

                    async with anyio.create_task_group() as group:
                        for index in range(len(prompts)):
                            group.start_soon(one, index)
                return results

            outcomes = clients.run_async(kind, main)
    failed = [o for o in outcomes if isinstance(o, g.HTTPStatusError)]
    assert len(failed) == 1
    assert failed[0].status == 400
    replied = [(p, o) for p, o in zip(prompts, outcomes, strict=True) if isinstance(o, str)]
    assert len(replied) == 9
    assert all(o == g.server.expected_reply(p) for p, o in replied)
    assert service.counts["login"] == 3  # the refused one, then two for nine chats
    assert service.counts["text"] == 9
    assert credentials.pending_logins == 0


def _blocking_outcomes(url: str, prompts: list[str], credentials: g.Credentials) -> list[object]:
    results: list[object] = [None] * len(prompts)
    with Client(url, credentials=credentials) as client:

        def one(index: int) -> None:
            try:
                results[index] = client.chat(prompts[index])
            except g.HTTPStatusError as error:
                results[index] = error

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(prompts))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return results


def test_threads_of_two_blocking_clients_sharing_credentials(no_leaks: None) -> None:
    # The counts change under one process-wide lock, so clients that share
    # credentials stay within the rule from any number of threads.
    service = make_service()
    credentials = g.Credentials()
    prompts = [f"thread {n}" for n in range(30)]
    replies: list[str] = [""] * len(prompts)
    with (
        serve_in_thread(service) as url,
        Client(url, credentials=credentials) as first,
        Client(url, credentials=credentials) as second,
    ):

        def one(index: int) -> None:
            client = first if index % 2 else second
            replies[index] = client.chat(prompts[index])

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(prompts))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert replies == [g.server.expected_reply(p) for p in prompts]
    assert service.counts["login"] == 6
    assert service.counts["text"] == 30
    assert credentials.pending_logins == 0


@pytest.mark.parametrize("kind", list(clients.ASYNC_KINDS))
def test_a_stalled_login_holds_up_only_the_chats_seated_on_it(kind: str, no_leaks: None) -> None:
    # Ten chats: two logins at once.  The one the service sees first stalls a
    # minute; the other login's five chats finish meanwhile (one after another,
    # they would all wait behind the stall).
    service = make_service(faults=["stall=60@login#1"])
    credentials = g.Credentials()
    with serve_in_thread(service) as url:

        async def main(backend: str) -> tuple[int, str]:
            done = 0
            async with AsyncClient(url, backend=backend, credentials=credentials) as client:

                async def one(index: int) -> None:
                    nonlocal done
                    reply = await client.chat(f"stalled {index}")
                    assert reply == g.server.expected_reply(f"stalled {index}")
                    done += 1

                with anyio.fail_after(30):  # a safety net only
                    async with anyio.create_task_group() as group:
                        for index in range(10):
                            group.start_soon(one, index)
                        while done < 5:
                            await anyio.sleep(0.01)
                        assert service.counts["login"] == 2
                        group.cancel_scope.cancel()
                # The cancelled login left nothing pending; the client goes on.
                assert credentials.pending_logins == 0
                assert credentials.seated == 0
                return done, await client.chat("after")

        done, after = clients.run_async(kind, main)
    assert done == 5
    assert after == g.server.expected_reply("after")


@pytest.mark.parametrize("kind", list(clients.ASYNC_KINDS))
def test_cancelling_the_chat_that_logs_in_lets_the_seated_chats_log_in(
    kind: str, no_leaks: None
) -> None:
    service = make_service(faults=["stall=60@login#1"])
    credentials = g.Credentials()
    with serve_in_thread(service) as url:

        async def main(backend: str) -> list[str]:
            replies: list[str] = []
            async with AsyncClient(url, backend=backend, credentials=credentials) as client:

                async def one(index: int) -> None:
                    replies.append(await client.chat(f"seated {index}"))

                first = anyio.CancelScope()
                with anyio.fail_after(30):  # a safety net only
                    async with anyio.create_task_group() as group:
                        group.start_soon(_in_scope, first, client)
                        while service.counts["login"] < 1:  # the server holds it
                            await anyio.sleep(0.01)
                        for index in range(4):
                            group.start_soon(one, index)
                        while credentials.seated < 4:
                            await anyio.sleep(0.01)
                        first.cancel()
            return replies

        replies = clients.run_async(kind, main)
    assert sorted(replies) == sorted(g.server.expected_reply(f"seated {n}") for n in range(4))
    assert service.counts["login"] == 2  # the stalled one, then one for the four
    assert credentials.logins == 1
    assert credentials.pending_logins == 0


async def _in_scope(scope: anyio.CancelScope, client: AsyncClient) -> None:
    with scope:
        await client.chat("the one that logs in")


# -- the rule under any interleaving -------------------------------------------------------

ACTIONS = ("claim", "login-ok", "login-fails", "cancel", "finish", "later", "refuse")

#: Chats in the property test: few, so that random steps often hit the same one.
CHATS = 8


@settings(max_examples=500, deadline=None)
@given(
    st.integers(1, 5),
    st.integers(1, 4),
    st.lists(st.tuples(st.sampled_from(ACTIONS), st.integers(0, CHATS - 1)), max_size=80),
)
# A seat that wakes after its token expired; one cancelled after its login ended.
@example(5, 4, [("claim", 0), ("claim", 1), ("login-ok", 0), ("later", 7), ("claim", 1)])
@example(5, 4, [("claim", 0), ("claim", 1), ("login-ok", 0), ("cancel", 1)])
def test_no_interleaving_over_uses_a_token_or_strands_a_chat(
    max_uses: int, max_pending: int, steps: list[tuple[str, int]]
) -> None:
    """Eight chats, any order of claims, logins that end well or not,
    cancellations, refusals and a clock that moves: no token serves more than
    ``max_uses`` text requests, none is handed out past its expiry (but to the
    chat that logged in for it), and once the logins end every chat gets on."""
    creds = g.Credentials(max_uses=max_uses, margin=30, max_pending_logins=max_pending)
    tickets = [Ticket() for _ in range(CHATS)]
    state = ["new"] * CHATS
    given_out: dict[str, int] = {}
    expiry: dict[str, float] = {}
    now = NOW
    logins = 0

    def claim(i: int) -> None:
        ticket = tickets[i]
        wait = creds.claim(ticket, now)
        if wait is g.NEED_HANDLE:
            wait = creds.claim(ticket, now, f"h{i}")
        if ticket.token is not None:
            assert wait is None
            assert now < expiry[ticket.token] - 30  # a seat or a spare use: fresh
            take(i)
        elif ticket.own:
            assert wait is None
            state[i] = "logging"
        else:
            assert isinstance(wait, str)
            assert wait.startswith("h")
            state[i] = "waiting"

    def take(i: int) -> None:
        token = tickets[i].token
        assert token is not None
        given_out[token] = given_out.get(token, 0) + 1
        state[i] = "token"

    def login_ok(i: int) -> None:
        nonlocal logins
        logins += 1
        token = f"tok{logins}"
        expiry[token] = now + 1000
        creds.logged_in(tickets[i], token, now + 1000)
        take(i)

    for action, i in steps:
        if action == "later":
            now += 150 * (i + 1)
        elif action == "refuse" and given_out:
            creds.invalidate(f"tok{1 + i % logins}")
        elif action == "claim" and state[i] in {"new", "waiting"}:
            claim(i)
        elif action == "login-ok" and state[i] == "logging":
            login_ok(i)
        elif action in {"login-fails", "cancel"} and state[i] in {"logging", "waiting", "new"}:
            creds.release(tickets[i])
            state[i] = "gone"
        elif action == "finish" and state[i] == "token":
            creds.release(tickets[i])
            state[i] = "done"
        _check(creds, given_out, max_uses, max_pending)
    # Every login in flight ends well; then every chat still waiting gets on.
    for _ in range(4 * CHATS):
        for i in range(CHATS):
            if state[i] == "logging":
                login_ok(i)
            elif state[i] in {"new", "waiting"}:
                claim(i)
            _check(creds, given_out, max_uses, max_pending)
    assert all(s in {"token", "done", "gone"} for s in state), state
    assert creds.pending_logins == 0
    assert creds.seated == 0
    # Every seat was taken or given back: no use stays reserved for nobody.
    assert all(entry.held == 0 for entry in creds._tokens)


def _check(
    creds: g.Credentials, given_out: dict[str, int], max_uses: int, max_pending: int
) -> None:
    assert all(count <= max_uses for count in given_out.values())
    for entry in creds._tokens:
        assert entry.held >= 0
        assert entry.uses + entry.held <= max_uses
    assert creds.pending_logins <= max_pending
