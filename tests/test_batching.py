"""Group commit: a card's concurrent transactions share one database transaction, each in its savepoint.

The leader of a batch is held (the batcher's ``hold`` hook) until the test has queued every request
of it in a known order, so the batches here are formed deterministically, not by timing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from itertools import pairwise
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine, text

from app.domain.batching import NOT_RUN, Batcher
from app.domain.trans_requests import TransRequest
from app.entities import Transaction
from app.enums import CodeType, TransType
from app.errors import (
    CardNotUsableError,
    ConflictError,
    InsufficientFundsError,
    NotFoundError,
    UnavailableError,
)
from app.policy import Principal
from app.store import moves
from tests.conftest import fund
from tests.test_concurrency import CODE, THREADS, USE, Tally, in_parallel, ledger_differences, scalar

# A leader waits 2 ms for company unless a test says otherwise, and debits by code take the full
# path: a plain debit in one statement (app.domain.plain_debits) is never batched.
pytestmark = pytest.mark.settings(batch_wait_ms=2, one_statement_debits=False)

Outcome = Transaction | Exception
T = TypeVar("T")


def _debit(card_id: int, cents: int, n: int = 0) -> TransRequest:
    """Even requests address the card by its code, odd ones by its id."""
    amount = f"-{cents / 100:.2f}"
    if n % 2:
        return TransRequest(TransType.USE, amount, giftcard_id=str(card_id))
    return TransRequest(TransType.USE, amount, code_type=CodeType.PHYSICAL, code=CODE)


def _batcher(services: Any) -> Batcher:
    batcher = services.mutations.batcher
    assert isinstance(batcher, Batcher)
    return batcher


@contextmanager
def _sizes(batcher: Batcher) -> Iterator[list[int]]:
    sizes: list[int] = []
    batcher.observer = sizes.append
    try:
        yield sizes
    finally:
        batcher.observer = None


def _recorded_waits(batcher: Batcher) -> list[float | None]:
    """How long each leader of ``batcher`` is told to wait for its batch to fill, from now on."""
    waits: list[float | None] = []

    class Recorded(threading.Condition):
        def wait_for(self, predicate: Callable[[], T], timeout: float | None = None) -> T:
            waits.append(timeout)
            return super().wait_for(predicate, timeout)

    batcher._formed = Recorded(batcher._lock)  # type: ignore[assignment]
    return waits


@contextmanager
def _first_leader_held(batcher: Batcher) -> Iterator[threading.Event]:
    """The first leader of ``batcher`` from now on held, before its batch forms, until the event
    yielded is set (at the latest on leaving); later leaders run at once."""
    release, holds = threading.Event(), []

    def hold_the_first(card: int) -> None:
        holds.append(card)
        if len(holds) == 1:
            release.wait(30)

    batcher.hold = hold_the_first
    try:
        yield release
    finally:
        batcher.hold = None
        release.set()


def _until(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the request never reached the batch"
        time.sleep(0.002)


def _in_one_batch(services: Any, card_id: int, calls: list[Callable[[], Transaction]]) -> list[Outcome]:
    """Each call on a thread of its own, queued in list order behind a leader held until all are
    queued: one batch, in that order. Each call's answer or error."""
    batcher, release = _batcher(services), threading.Event()

    def hold(_card: int) -> None:
        release.wait(30)

    batcher.hold = hold

    def outcome(call: Callable[[], Transaction]) -> Outcome:
        try:
            return call()
        except Exception as exc:
            return exc

    try:
        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            futures = []
            for queued, call in enumerate(calls, start=1):
                futures.append(pool.submit(outcome, call))
                _until(lambda queued=queued: batcher.pending(card_id) == queued)  # type: ignore[misc]
            release.set()
            return [future.result(timeout=60) for future in futures]
    finally:
        batcher.hold = None


def _create(
    services: Any, n: int, request: TransRequest, key: str | None = None
) -> Callable[[], Transaction]:
    principal = Principal(f"pos-{n}", USE)
    return lambda: services.ledger.create(principal, request, key)


def _chain(engine: Engine, card_id: int) -> list[tuple[str, int, int, int]]:
    """The card's completed ledger rows in the order they were written: type, amount, before, after."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT trans_type, amount, balance_before, balance_after FROM giftcard_transactions "
                "WHERE giftcard_id = :id AND status = 'COMPLETED' ORDER BY id"
            ),
            {"id": card_id},
        ).all()
    return [tuple(row) for row in rows]


def _balance(engine: Engine, card_id: int) -> int:
    return scalar(engine, "SELECT balance FROM giftcards WHERE id = :id", id=card_id)


def test_a_batch_refuses_exactly_the_debits_past_the_balance_in_arrival_order(services, seed):
    # given a card holding 4 units and another card holding 9
    card_id, other = seed({CodeType.PHYSICAL: CODE}), seed({CodeType.PHYSICAL: "OTHERCARD0001"})
    fund(services.engine, card_id, 4)
    fund(services.engine, other, 9)

    # when five debits of 2, 1, 3, 1, 1 units arrive in that order and share one batch
    cents = [2, 1, 3, 1, 1]
    calls = [_create(services, n, _debit(card_id, amount, n)) for n, amount in enumerate(cents)]
    with _sizes(_batcher(services)) as sizes:
        outcomes = _in_one_batch(services, card_id, calls)

    # then they ran in one transaction, in arrival order: the third and the fifth found too little
    assert sizes == [5]
    assert [type(outcome).__name__ for outcome in outcomes] == [
        "Transaction", "Transaction", "InsufficientFundsError", "Transaction", "InsufficientFundsError",
    ]  # fmt: skip
    done = [outcome for outcome in outcomes if isinstance(outcome, Transaction)]
    assert [view.balance for view in done] == [2, 1, 0]
    assert len({view.id for view in done}) == 3  # a ledger row each
    assert _chain(services.engine, card_id) == [
        ("IMPORT", 4, 0, 4), ("USE", -2, 4, 2), ("USE", -1, 2, 1), ("USE", -1, 1, 0),
    ]  # fmt: skip
    assert (_balance(services.engine, card_id), _balance(services.engine, other)) == (0, 9)
    assert ledger_differences(services.engine) == []


def test_a_failing_request_rolls_back_alone_and_the_batch_commits(services, seed, monkeypatch):
    # given a card holding 10 units, and a ledger write that fails for a debit of 7 after writing
    card_id = seed({CodeType.PHYSICAL: CODE})
    fund(services.engine, card_id, 10)
    move = moves.move

    def failing(session: Any, change: Any, entry: Any, records: Any) -> Any:
        written = move(session, change, entry, records)
        if entry["amount"] == -7:
            raise RuntimeError("the disk is full")
        return written

    monkeypatch.setattr(moves, "move", failing)

    # when debits of 1, 7 and 2 share one batch
    calls = [_create(services, n, _debit(card_id, amount, n)) for n, amount in enumerate([1, 7, 2])]
    first, failed, last = _in_one_batch(services, card_id, calls)

    # then the 7 failed alone, with nothing of it left, and the others committed around it
    assert isinstance(failed, RuntimeError)
    assert isinstance(first, Transaction) and isinstance(last, Transaction)
    assert (first.balance, last.balance) == (9, 7)
    assert _chain(services.engine, card_id) == [("IMPORT", 10, 0, 10), ("USE", -1, 10, 9), ("USE", -2, 9, 7)]
    assert _balance(services.engine, card_id) == 7
    events = scalar(services.engine, "SELECT COUNT(*) FROM audit_events WHERE outcome = 'OK'")
    assert events == 2  # the failed request's audit event went with it
    assert ledger_differences(services.engine) == []


def test_two_requests_with_one_key_in_a_batch_write_once_and_answer_alike(services, seed):
    # given a card holding 10 units
    card_id = seed({CodeType.PHYSICAL: CODE})
    fund(services.engine, card_id, 10)
    principal = Principal("till", USE)
    request = _debit(card_id, 3, 1)

    # when one client's request and its retry (one key) share a batch with another client's debit
    calls = [
        lambda: services.ledger.create(principal, request, "key-1"),
        _create(services, 2, _debit(card_id, 1, 2)),
        lambda: services.ledger.create(principal, request, "key-1"),
    ]
    first, other, retry = _in_one_batch(services, card_id, calls)

    # then the key's debit was written once and both answers are its answer
    assert isinstance(first, Transaction) and isinstance(retry, Transaction)
    assert retry == first
    assert isinstance(other, Transaction) and other.balance == 6
    assert _chain(services.engine, card_id) == [("IMPORT", 10, 0, 10), ("USE", -3, 10, 7), ("USE", -1, 7, 6)]
    assert scalar(services.engine, "SELECT COUNT(*) FROM idempotency_keys") == 1
    replays = "SELECT giftcard_id FROM audit_events WHERE outcome = 'REPLAYED'"
    with services.engine.connect() as connection:  # the retry's answer was audited as a replay of the card's
        assert connection.execute(text(replays)).scalars().all() == [card_id]
    assert ledger_differences(services.engine) == []


def test_a_failed_commit_fails_every_request_of_the_batch(services, seed):
    # given a card holding 10 units, and a batch whose commit fails
    card_id = seed({CodeType.PHYSICAL: CODE})
    fund(services.engine, card_id, 10)
    batcher = _batcher(services)
    new_unit = batcher._new_unit

    def failing_unit() -> Any:
        unit = new_unit()

        def commit() -> None:
            raise ConnectionError("the server went away")

        unit.commit = commit  # type: ignore[method-assign]
        return unit

    batcher._new_unit = failing_unit

    # when three debits share that batch
    calls = [_create(services, n, _debit(card_id, 1, n)) for n in range(3)]
    outcomes = _in_one_batch(services, card_id, calls)

    # then each got the commit's error and nothing was written
    assert [type(outcome) for outcome in outcomes] == [ConnectionError] * 3
    assert _chain(services.engine, card_id) == [("IMPORT", 10, 0, 10)]
    assert _balance(services.engine, card_id) == 10

    # and the card's next batch commits as usual
    batcher._new_unit = new_unit
    assert services.ledger.create(Principal("pos", USE), _debit(card_id, 1)).balance == 9


@pytest.mark.settings(batch_wait_ms=3)
def test_a_leader_waits_the_configured_bound_for_its_batch(services, seed):
    # given a batcher configured to wait 3 ms, whose waits are recorded
    card_id = seed({CodeType.PHYSICAL: CODE})
    fund(services.engine, card_id, 10)
    batcher = _batcher(services)
    waits = _recorded_waits(batcher)

    # when two debits arrive one after the other
    for _ in range(2):
        services.ledger.create(Principal("pos", USE), _debit(card_id, 1))

    # then each leader waited exactly the bound, and no longer
    assert waits == [0.003, 0.003]
    assert _balance(services.engine, card_id) == 8


@pytest.mark.settings(group_commit=False)
def test_group_commit_can_be_turned_off(services, seed):
    card_id = seed({CodeType.PHYSICAL: CODE})
    fund(services.engine, card_id, 10)
    assert services.mutations.batcher is None
    assert services.ledger.create(Principal("pos", USE), _debit(card_id, 1, 1)).balance == 9


@pytest.mark.settings(batch_wait_ms=0)
def test_with_no_wait_a_batch_is_what_queued_while_the_last_one_ran(services, seed):
    # given group commit on by default, with no wait
    card_id = seed({CodeType.PHYSICAL: CODE})
    fund(services.engine, card_id, 10)
    batcher = _batcher(services)
    waits = _recorded_waits(batcher)

    # when a debit arrives alone, then three queue while a leader is held
    with _sizes(batcher) as sizes:
        services.ledger.create(Principal("pos", USE), _debit(card_id, 1))
        calls = [_create(services, n, _debit(card_id, 1, n)) for n in range(3)]
        outcomes = _in_one_batch(services, card_id, calls)

    # then nobody waited for company: the first ran alone, the three that queued ran together
    assert waits == []
    assert sizes == [1, 3]
    assert [outcome.balance for outcome in outcomes if isinstance(outcome, Transaction)] == [8, 7, 6]
    assert _balance(services.engine, card_id) == 6


def test_cards_share_a_batch_only_where_one_writer_takes_every_card(services, seed):
    # given two cards, and a debit of the first held as its batch's leader
    card_id, other = seed({CodeType.PHYSICAL: CODE}), seed({CodeType.PHYSICAL: "OTHERCARD0001"})
    fund(services.engine, card_id, 10)
    fund(services.engine, other, 10)
    batcher = _batcher(services)
    sqlite = services.engine.dialect.name == "sqlite"
    assert batcher.per_card is (not sqlite)
    held = _first_leader_held(batcher)
    with held as release, _sizes(batcher) as sizes, ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(_create(services, 0, _debit(card_id, 1, 1)))
        _until(lambda: batcher.pending(card_id) == 1)
        # when a debit of the other card arrives meanwhile
        second = pool.submit(_create(services, 1, _debit(other, 2, 1)))
        if sqlite:  # it queues behind the first card's leader: one writer takes both
            _until(lambda: batcher.pending(other) == 2)
        else:  # it is answered while the first card's leader is still held
            assert second.result(timeout=10).balance == 8 and not first.done()
        release.set()
        outcomes = [first.result(timeout=60), second.result(timeout=60)]

    # then on SQLite they shared one transaction, on PostgreSQL each card committed on its own
    assert sizes == ([2] if sqlite else [1, 1])
    assert [outcome.balance for outcome in outcomes] == [9, 8]
    assert (_balance(services.engine, card_id), _balance(services.engine, other)) == (9, 8)
    assert ledger_differences(services.engine) == []


def test_parallel_debits_in_batches_never_overdraw(services, seed):
    # given a card holding 300 units
    card_id = seed({CodeType.PHYSICAL: CODE})
    fund(services.engine, card_id, 300)

    # when 16 clients send 32 one-unit debits each at once (512 in all), with batching on
    def client(n: int) -> Tally:
        principal, request, tally = Principal(f"pos-{n}", USE), _debit(card_id, 1, n), Tally()
        for _ in range(32):
            try:
                tally.balances.append(services.ledger.create(principal, request).balance)
            except InsufficientFundsError:
                tally.refused += 1
            except Exception as exc:
                tally.errors.append(repr(exc))
        return tally

    with _sizes(_batcher(services)) as sizes:
        seen = Tally.merge(in_parallel(THREADS, client))

    # then 300 succeeded, each with a balance of its own, and every other was refused
    assert seen.errors == []
    assert (len(seen.balances), seen.refused) == (300, THREADS * 32 - 300)
    assert sorted(seen.balances) == list(range(300))
    chain = _chain(services.engine, card_id)
    assert len(chain) == 301
    assert all(before == after for (_, _, _, after), (_, _, before, _) in pairwise(chain))
    assert _balance(services.engine, card_id) == 0
    assert sum(sizes) == THREADS * 32
    assert ledger_differences(services.engine) == []
    print(f"batches: {len(sizes)}, largest {max(sizes)}")


def test_a_wrong_pin_in_a_batch_stays_counted_and_the_others_commit(services, seed):
    # given a card holding 10 units whose code has a PIN
    card_id = seed({CodeType.PHYSICAL: CODE}, pin="2468")
    fund(services.engine, card_id, 10)

    def by_code(n: int, pin: str) -> Callable[[], Transaction]:
        request = TransRequest(TransType.USE, "-0.01", code_type=CodeType.PHYSICAL, code=CODE, pin=pin)
        return _create(services, n, request)

    # when two debits with the right PIN and one with a wrong PIN between them share a batch
    calls = [by_code(0, "2468"), by_code(1, "1357"), by_code(2, "2468")]
    first, wrong, last = _in_one_batch(services, card_id, calls)

    # then the wrong PIN was refused and counted, and the right ones debited around it
    assert isinstance(wrong, CardNotUsableError)
    assert isinstance(first, Transaction) and isinstance(last, Transaction)
    assert (first.balance, last.balance) == (9, 8)
    assert _chain(services.engine, card_id) == [("IMPORT", 10, 0, 10), ("USE", -1, 10, 9), ("USE", -1, 9, 8)]
    # (the right PIN after it ended the run of wrong ones, in the same transaction)
    assert scalar(services.engine, "SELECT failed_pin_attempts FROM giftcard_codes") == 0

    # and a wrong PIN last in a batch stays counted after the batch commits
    calls = [by_code(3, "2468"), by_code(4, "1357")]
    done, refused = _in_one_batch(services, card_id, calls)
    assert isinstance(done, Transaction) and done.balance == 7
    assert isinstance(refused, CardNotUsableError)
    assert scalar(services.engine, "SELECT failed_pin_attempts FROM giftcard_codes") == 1
    assert ledger_differences(services.engine) == []


def test_a_caller_of_another_store_is_not_queued_behind_the_cards_batch(services, seed):
    # given a batch on a card of the default store, its leader held
    card_id = seed({CodeType.PHYSICAL: CODE})
    fund(services.engine, card_id, 10)
    batcher = _batcher(services)
    with _first_leader_held(batcher) as release, ThreadPoolExecutor(max_workers=1) as pool:
        held = pool.submit(_create(services, 0, _debit(card_id, 1, 0)))
        _until(lambda: batcher.pending(card_id) == 1)
        # when a caller of another store addresses the card by id meanwhile
        north = Principal("north-till", USE, stores=frozenset({"north"}))
        with pytest.raises(NotFoundError):
            services.ledger.create(north, _debit(card_id, 1, 1))
        # then it was answered without waiting for the held batch, which then debits alone
        assert not held.done()
        release.set()
        assert held.result(timeout=60).balance == 9
    assert _balance(services.engine, card_id) == 9


def test_a_batch_claims_its_keys_before_it_locks_the_card(services, seed, monkeypatch):
    # given a hold on a card, and its capture (which commits alone) holding its key "K" a moment
    # before it locks the card, as another worker's request can
    from app.domain import idempotency
    from app.errors import ConflictError

    card_id = seed({CodeType.PHYSICAL: CODE})
    fund(services.engine, card_id, 10)
    till = Principal("till", USE)
    hold = services.ledger.create(
        till, TransRequest(TransType.USE, "-0.02", giftcard_id=str(card_id), authorize_only=True)
    )
    claimed, claim = threading.Event(), idempotency.store.claim_key

    def slow_claim(session: Any, row: Any) -> bool:
        claimed_it: bool = claim(session, row)
        if threading.current_thread().name == "capture":
            claimed.set()
            time.sleep(0.5)
        return claimed_it

    monkeypatch.setattr(idempotency.store, "claim_key", slow_claim)
    answers: dict[str, Outcome] = {}

    def capture_it() -> None:
        try:
            answers["capture"] = services.ledger.capture(till, str(hold.id), None, "K")
        except Exception as exc:
            answers["capture"] = exc

    capture = threading.Thread(name="capture", target=capture_it)
    capture.start()
    assert claimed.wait(5)

    # when a batch of a debit keyed "A" and a debit keyed "K" (a different request) runs meanwhile
    calls = [
        lambda: services.ledger.create(till, _debit(card_id, 1, 1), "A"),
        lambda: services.ledger.create(till, _debit(card_id, 3, 1), "K"),
    ]
    first, second = _in_one_batch(services, card_id, calls)
    capture.join(30)

    # then nobody deadlocked: the capture and the first debit committed, the second found "K" taken
    assert isinstance(answers["capture"], Transaction), answers["capture"]
    assert isinstance(first, Transaction), first
    assert isinstance(second, ConflictError), second
    assert _balance(services.engine, card_id) == 7
    assert scalar(services.engine, "SELECT COUNT(*) FROM idempotency_keys") == 2
    assert ledger_differences(services.engine) == []


def test_a_keyed_request_failing_in_a_batch_gives_its_key_up(services, seed, monkeypatch):
    # given a card holding 10 units, and a ledger write that fails for a debit of 7 after writing
    card_id = seed({CodeType.PHYSICAL: CODE})
    fund(services.engine, card_id, 10)
    move, till = moves.move, Principal("till", USE)

    def failing(session: Any, change: Any, entry: Any, records: Any) -> Any:
        written = move(session, change, entry, records)
        if entry["amount"] == -7:
            raise RuntimeError("the disk is full")
        return written

    monkeypatch.setattr(moves, "move", failing)

    # when keyed debits of 1 and 7 share a batch, and the 7 fails after the batch claimed its key
    calls = [
        lambda: services.ledger.create(till, _debit(card_id, 1, 1), "one"),
        lambda: services.ledger.create(till, _debit(card_id, 7, 1), "seven"),
    ]
    done, failed = _in_one_batch(services, card_id, calls)

    # then only the debit that ran keeps its key, and a retry of the failed one runs afresh
    assert isinstance(done, Transaction) and isinstance(failed, RuntimeError)
    keys = "SELECT COUNT(*) FROM idempotency_keys WHERE key = :key"
    assert (scalar(services.engine, keys, key="one"), scalar(services.engine, keys, key="seven")) == (1, 0)
    monkeypatch.setattr(moves, "move", move)
    retried = services.ledger.create(till, _debit(card_id, 7, 1), "seven")
    assert retried.balance == 2 and _balance(services.engine, card_id) == 2
    assert ledger_differences(services.engine) == []


def test_a_key_reused_for_another_request_in_a_batch_is_refused_and_the_first_keeps_it(services, seed):
    # given a card holding 10 units
    card_id = seed({CodeType.PHYSICAL: CODE})
    fund(services.engine, card_id, 10)
    till = Principal("till", USE)

    # when a debit keyed "K" and another debit (another amount) with the same key share a batch
    calls = [
        lambda: services.ledger.create(till, _debit(card_id, 3, 1), "K"),
        lambda: services.ledger.create(till, _debit(card_id, 4, 1), "K"),
    ]
    first, second = _in_one_batch(services, card_id, calls)

    # then the second was refused without touching the first's key: a retry of the first replays
    assert isinstance(first, Transaction) and first.balance == 7
    assert isinstance(second, ConflictError)
    assert services.ledger.create(till, _debit(card_id, 3, 1), "K") == first
    assert _balance(services.engine, card_id) == 7
    assert scalar(services.engine, "SELECT COUNT(*) FROM idempotency_keys") == 1
    replays = "SELECT giftcard_id FROM audit_events WHERE outcome = 'REPLAYED'"
    with services.engine.connect() as connection:
        assert connection.execute(text(replays)).scalars().all() == [card_id]  # the replay names its card


def test_a_follower_not_taken_in_time_is_unavailable_and_never_runs(services, seed):
    # given a leader held past its followers' bound
    card_id = seed({CodeType.PHYSICAL: CODE})
    fund(services.engine, card_id, 10)
    batcher = _batcher(services)
    batcher.timeout_seconds = 0.2
    with _first_leader_held(batcher) as release, ThreadPoolExecutor(max_workers=1) as pool:
        held = pool.submit(_create(services, 0, _debit(card_id, 1, 1)))
        _until(lambda: batcher.pending(card_id) == 1)
        # when a second debit waits for the card's batch longer than that
        with pytest.raises(UnavailableError) as raised:
            services.ledger.create(Principal("pos-1", USE), _debit(card_id, 2, 1))
        release.set()
        assert held.result(timeout=60).balance == 9

    # then it was told it did not run, and it did not: only the first debit is in the ledger
    assert raised.value.message == NOT_RUN
    assert _balance(services.engine, card_id) == 9
    assert batcher.pending(card_id) == 0
    assert ledger_differences(services.engine) == []


def test_a_batch_takes_at_most_its_size_and_the_rest_form_the_next(services, seed):
    # given batches of at most 2
    card_id = seed({CodeType.PHYSICAL: CODE})
    fund(services.engine, card_id, 10)
    batcher = _batcher(services)
    batcher.max_size = 2

    # when three debits queue behind a held leader
    calls = [_create(services, n, _debit(card_id, 1, n)) for n in range(3)]
    with _sizes(batcher) as sizes:
        outcomes = _in_one_batch(services, card_id, calls)

    # then the first two ran together and the third after them, in arrival order
    assert sizes == [2, 1]
    assert [outcome.balance for outcome in outcomes if isinstance(outcome, Transaction)] == [9, 8, 7]
    assert ledger_differences(services.engine) == []
