"""Group commit: concurrent transactions on one card in this process share one database transaction.

A hot card serialises on its row lock (PostgreSQL) or the write lock (SQLite), held through each
commit's WAL flush. Here the first request for a card leads: it waits at most the batch wait (by
default not at all) for others on the same card, then runs them all in ONE unit of work and commits
once; on SQLite, whose one writer takes every card's writes in turn, the lane is all cards. A batch
of one runs exactly as ``run`` does. For more, the leader first claims the batch's idempotency keys,
each once, in one global order (sorted), before anything is locked: every transaction takes keys
before row locks and a batch's keys in that order, so a batch and another worker's request holding
one of its keys cannot deadlock. Then, in arrival order, each request runs in its own savepoint with
the remaining steps of :meth:`MutationRunner.run` (guard, work, audit, seal). Requests arriving
while a batch runs join the next one, which the first of them leads. Each request still gets its own
ledger row, key row, audit row and answer (or its own refusal): a request that fails rolls back to
its savepoint and gives its key up, never aborting the others; a guard's refusal keeps what the
guard wrote (a wrong PIN counted), as ``run`` does. A commit that fails fails every request of its
batch with that error: nothing of it was written. A second request with a key an earlier one of the
batch sealed finds the key taken and replays its answer.
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

# Whose requests share batches: a card (or every card: ANY_CARD), and the callers' stores (None:
# every store).
Lane = tuple[int, tuple[str, ...] | None]
ANY_CARD = 0  # the lane's card where one writer takes every card's writes (SQLite)


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
    claimed: bool = False  # its key claimed by the batch, before the card was locked

    @property
    def settled(self) -> bool:
        """Answered by its claim already: a replay, or the key's refusal."""
        return self.replayed or self.error is not None


class Batcher:
    """The group commit of one process and engine: one lane of waiting requests per card."""

    def __init__(
        self,
        new_unit: Callable[[], UnitOfWork],
        runner: MutationRunner,
        wait_seconds: float,
        per_card: bool = True,
        max_size: int = MAX_BATCH,
    ) -> None:
        self._new_unit = new_unit
        self._runner = runner  # its steps run in each request's savepoint
        self.wait_seconds = wait_seconds  # how long a leader waits for its batch to fill
        # A lane per card where cards lock apart (PostgreSQL: row locks); one for all cards where a
        # transaction locks the whole database anyway (SQLite), so that any cards' writes group.
        self.per_card = per_card
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
        lane = (self._card(card_id), principal.store_ids())
        if self._enqueue(lane, request):
            self._lead(lane, form=True)
        else:
            self._follow(lane, request)
        return self._answer(request)

    def pending(self, card_id: int) -> int:
        """Requests for the card not yet taken into a batch (a leader's own until it takes it)."""
        with self._lock:
            card_lane = self._card(card_id)
            return sum(len(lane) for (card, _), lane in self._lanes.items() if card == card_lane)

    def _card(self, card_id: int) -> int:
        return card_id if self.per_card else ANY_CARD

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
            if self.wait_seconds > 0:
                with self._formed:
                    self._formed.wait_for(lambda: len(self._lanes[key]) >= self.max_size, self.wait_seconds)
        with self._lock:
            lane = self._lanes[key]
            batch, self._lanes[key] = lane[: self.max_size], lane[self.max_size :]
        try:
            if len(batch) == 1:  # alone: as ``MutationRunner.run`` without batching, no savepoint
                self._run_alone(batch[0])
            else:
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

    def _run_alone(self, request: _Request) -> None:
        """The leader's own request, alone in its batch, on its own thread."""
        if self.observer is not None:
            self.observer(1)
        try:
            request.result, request.replayed = self._runner.alone(
                request.principal, request.mutation, request.keyed, request.work, request.guard
            )
        except Exception as exc:
            request.error = exc

    def _run_batch(self, batch: list[_Request]) -> None:
        """One unit of work, a savepoint per request in arrival order, one commit."""
        if self.observer is not None:
            self.observer(len(batch))
        try:
            with self._new_unit() as unit:
                self._claim_keys(unit.session, batch)
                for request in batch:
                    if not request.settled:
                        request.context.run(self._savepoint, unit.session, request)
                unit.commit()
        except BaseException as exc:  # nothing of the batch was written: each gets the error
            for request in batch:
                request.result, request.replayed, request.error = None, False, exc
            if not isinstance(exc, Exception):
                raise

    def _claim_keys(self, session: Session, batch: list[_Request]) -> None:
        """Claim each key of the batch once, by the first request carrying it, in sorted order."""
        firsts: dict[tuple[str, str, str], _Request] = {}
        for request in batch:
            if request.keyed is not None:
                firsts.setdefault(request.keyed.ident, request)
        for ident in sorted(firsts):
            firsts[ident].context.run(self._claim, session, firsts[ident])

    def _claim(self, session: Session, request: _Request) -> None:
        try:
            replayed = self._runner.claim(session, request.mutation, request.keyed)
        except Exception as exc:  # the key's refusal (used for another request): this request's own
            request.error = exc
            return
        request.result, request.replayed, request.claimed = replayed, replayed is not None, replayed is None

    def _savepoint(self, session: Session, request: _Request) -> None:
        nested = session.begin_nested()
        try:
            self._steps(session, request)
            nested.commit()
        except Exception as exc:  # this request's writes go; the batch's others stay
            if nested.is_active:
                nested.rollback()
            if request.claimed and request.keyed is not None:
                self._runner.release(session, request.keyed)  # a failed request keeps no key
            request.result, request.replayed, request.error = None, False, exc

    def _steps(self, session: Session, request: _Request) -> None:
        """The steps of ``MutationRunner.run`` inside the batch's transaction: those after the claim
        for a request whose key the batch claimed, all of them for a later one with the same key."""
        steps = self._runner.proceed if request.claimed else self._runner.steps
        request.result, request.replayed, refusal = steps(
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
