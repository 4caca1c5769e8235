"""Group commit: concurrent transactions on one card in this process share one database transaction.

A hot card serialises on its row lock (PostgreSQL) or the write lock (SQLite), held through each
commit's WAL flush. Here the first request for a card leads: it waits at most the batch wait for
others on the same card, then runs them all, in arrival order, in ONE unit of work, each in its own
savepoint with exactly the steps of :meth:`MutationRunner.run` (claim the key or replay, guard,
work, audit, seal), and commits once. Requests arriving while a batch runs join the next one, which
the first of them leads. Each request still gets its own ledger row, key row, audit row and answer
(or its own refusal): a request that fails rolls back to its savepoint and never aborts the others;
a guard's refusal keeps what the guard wrote (a wrong PIN counted), as ``run`` does. A commit that
fails fails every request of its batch with that error: nothing of it was written. A second request
with a key an earlier one of the batch sealed finds the key taken and replays its answer.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from app.db import UnitOfWork
from app.domain.idempotency import KeyedRequest
from app.errors import UnavailableError
from app.policy import Principal

if TYPE_CHECKING:
    from app.domain.mutations import Guard, Mutation, MutationRunner, Work

MAX_BATCH = 64  # requests in one transaction, at most
# How long a request waits for its batch before it gives up with UNAVAILABLE; the database's own
# timeouts end a batch long before this.
FOLLOWER_TIMEOUT_SECONDS = 60.0
NOT_RUN = "the card is busy: the transaction was not run; try again"
UNKNOWN = "the card is busy: the transaction did not finish in time; retry with the same idempotency key"

# Whose requests share batches: a card, and the stores of the callers (None: every store).
Lane = tuple[int, tuple[str, ...] | None]


@dataclass(eq=False)
class _Request:
    """One mutation waiting for (or in) a batch, and what came of it."""

    principal: Principal
    mutation: Mutation
    keyed: KeyedRequest | None
    work: Work[Any]
    guard: Guard | None
    context: contextvars.Context = field(default_factory=contextvars.copy_context)  # the caller's
    done: threading.Event = field(default_factory=threading.Event)  # answered, or handed the lead
    lead: bool = False  # leads the next batch
    result: Any = None
    error: BaseException | None = None
    replayed: bool = False


class Batcher:
    """The group commit of one process and engine: one lane of waiting requests per card."""

    def __init__(
        self,
        new_unit: Callable[[], UnitOfWork],
        runner: MutationRunner,
        wait_seconds: float,
        max_size: int = MAX_BATCH,
    ) -> None:
        self._new_unit = new_unit
        self._runner = runner  # its steps run in each request's savepoint
        self.wait_seconds = wait_seconds  # how long a leader waits for its batch to fill
        self.max_size = max_size
        self.timeout_seconds = FOLLOWER_TIMEOUT_SECONDS
        self._lock = threading.Lock()
        self._formed = threading.Condition(self._lock)  # a lane grew
        self._lanes: dict[Lane, list[_Request]] = {}  # a lane exists while its leader does
        self.hold: Callable[[int], None] | None = None  # called by a leader before its batch forms
        self.observer: Callable[[int], None] | None = None  # told each batch's size

    def run(
        self,
        card_id: int,
        principal: Principal,
        mutation: Mutation,
        keyed: KeyedRequest | None,
        work: Work[Any],
        guard: Guard | None = None,
    ) -> Any:
        """What ``MutationRunner.run`` would answer, from a batch of the card's transactions."""
        request = _Request(principal, mutation, keyed, work, guard)
        # A lane per card and caller's stores: a request for another store's card (by giftcardId) is
        # never queued behind that store's transactions, whose wait would tell the card exists.
        lane = (card_id, principal.store_ids())
        if self._enqueue(lane, request):
            self._lead(lane, form=True)
        else:
            self._follow(lane, request)
        return self._answer(request)

    def pending(self, card_id: int) -> int:
        """Requests for the card not yet taken into a batch (a leader's own until it takes it)."""
        with self._lock:
            return sum(len(lane) for (card, _), lane in self._lanes.items() if card == card_id)

    def _enqueue(self, key: Lane, request: _Request) -> bool:
        """Queue the request; whether it leads (no leader for the card yet)."""
        with self._lock:
            lane = self._lanes.get(key)
            if lane is None:
                self._lanes[key] = [request]
                return True
            lane.append(request)
            if len(lane) >= self.max_size:  # the one thing a forming leader waits for
                self._formed.notify_all()
            return False

    def _follow(self, key: Lane, request: _Request) -> None:
        """Wait for the answer, or for the lead of the next batch; never longer than the timeout."""
        if not request.done.wait(self.timeout_seconds):
            with self._lock:
                if not request.done.is_set():
                    lane = self._lanes.get(key, [])
                    if request in lane:
                        lane.remove(request)
                        raise UnavailableError(NOT_RUN)
                    raise UnavailableError(UNKNOWN)
        if request.lead:
            self._lead(key, form=False)

    def _lead(self, key: Lane, form: bool) -> None:
        """Form a batch (wait at most the batch wait), run it, answer it, hand the lane on."""
        if form:
            if self.hold is not None:
                self.hold(key[0])
            with self._formed:
                self._formed.wait_for(lambda: len(self._lanes[key]) >= self.max_size, self.wait_seconds)
        with self._lock:
            lane = self._lanes[key]
            batch, self._lanes[key] = lane[: self.max_size], lane[self.max_size :]
        try:
            self._run_batch(batch)
        finally:
            with self._lock:
                for request in batch:
                    request.done.set()
                rest = self._lanes[key]
                if rest:
                    rest[0].lead = True
                    rest[0].done.set()
                else:
                    del self._lanes[key]

    def _run_batch(self, batch: list[_Request]) -> None:
        """One unit of work, a savepoint per request in arrival order, one commit."""
        if self.observer is not None:
            self.observer(len(batch))
        try:
            with self._new_unit() as unit:
                for request in batch:
                    request.context.run(self._savepoint, unit.session, request)
                unit.commit()
        except BaseException as exc:  # nothing of the batch was written: each gets the error
            for request in batch:
                request.result, request.replayed, request.error = None, False, exc
            if not isinstance(exc, Exception):
                raise

    def _savepoint(self, session: Session, request: _Request) -> None:
        nested = session.begin_nested()
        try:
            self._steps(session, request)
            nested.commit()
        except Exception as exc:  # this request's writes go; the batch's others stay
            if nested.is_active:
                nested.rollback()
            request.result, request.replayed, request.error = None, False, exc

    def _steps(self, session: Session, request: _Request) -> None:
        """The steps of ``MutationRunner.run`` inside the batch's transaction."""
        request.result, request.replayed, refusal = self._runner.steps(
            session, request.principal, request.mutation, request.keyed, request.work, request.guard
        )
        if refusal is not None:
            request.error = refusal  # what the guard wrote (a wrong PIN counted) is kept

    def _answer(self, request: _Request) -> Any:
        """The request's answer, on its own thread; a replay audited after its batch, as ``run`` does."""
        if request.error is not None:
            raise request.error
        if request.replayed:
            self._runner.note_replay(request.principal, request.mutation, request.result)
        return request.result
