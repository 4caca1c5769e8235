"""The mutation runner: the one path every mutation's writes take, in one database transaction.

Claim the idempotency key (or replay its answer), run the guard (its writes are kept even when it
refuses: a wrong PIN stays counted), run the work, audit it, seal the answer, commit. A replay is
audited after its read transaction, so that on SQLite it never waits for the write lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlmodel import Session

from app.db import UnitOfWork
from app.domain.audit import AuditTrail
from app.domain.batching import Batcher
from app.domain.idempotency import Idempotency, KeyedRequest
from app.errors import GiftCardError
from app.events import Event, Events
from app.policy import Principal
from app.store import money, moves
from app.store.audit import AuditRecord

T = TypeVar("T")
# The mutation itself, in the runner's transaction.
Work = Callable[[Session], T]
# Checks a mutation's precondition in its transaction; returns the refusal to raise after commit.
Guard = Callable[[Session], GiftCardError | None]


@dataclass(frozen=True, slots=True)
class Mutation:
    """What a caller asked to change, as the runner needs it."""

    operation: str  # an Operation: what audit events and idempotency keys record
    request: Any  # what the idempotency key's digest covers (its encoding must never change)
    shape: Any  # the answer's type, to decode a replayed answer
    key: str | None = None  # the caller's idempotency key


class MutationRunner:
    """Runs mutations in a unit of work, with idempotency and audit as steps."""

    def __init__(
        self,
        new_unit: Callable[[], UnitOfWork],
        idempotency: Idempotency,
        audit: AuditTrail,
        events: Events | None = None,
    ) -> None:
        self._new_unit = new_unit
        self.batcher: Batcher | None = None  # the group commit of a card's transactions (app.domain.batching)
        self._idempotency = idempotency
        self._audit = audit
        self._events = events or Events()

    def run(
        self,
        principal: Principal,
        mutation: Mutation,
        work: Work[T],
        guard: Guard | None = None,
        batch: int | None = None,
    ) -> T:
        """``work`` at most once per key and input; a retry gets the first answer. With ``batch`` (a
        card id), in one transaction with the card's concurrent ones when batching is on."""
        keyed = self._idempotency.keyed(principal, mutation.key, mutation.operation, mutation.request)
        if batch is not None and self.batcher is not None:
            return self.batcher.run(batch, principal, mutation, keyed, work, guard)  # type: ignore[no-any-return]
        answer, replayed = self.alone(principal, mutation, keyed, work, guard)
        if replayed:
            self.note_replay(principal, mutation, answer)
        return answer  # type: ignore[no-any-return]

    def alone(
        self,
        principal: Principal,
        mutation: Mutation,
        keyed: KeyedRequest | None,
        work: Work[T],
        guard: Guard | None,
    ) -> tuple[Any, bool]:
        """The steps in a unit of work of their own, committed: (the answer, whether it is a
        replay, not yet audited as one); a guard's refusal is raised after the commit."""
        with self._new_unit() as unit:
            if keyed is None:  # nothing to seal: the work's last write may carry the COMMIT
                moves.ends_after_work(unit.session)
            answer, replayed, refusal = self.steps(unit.session, principal, mutation, keyed, work, guard)
            if not replayed:
                unit.commit()  # on a refusal, what the guard wrote (a wrong PIN counted) is kept
        if refusal is not None:
            raise refusal
        return answer, replayed

    def steps(
        self,
        session: Session,
        principal: Principal,
        mutation: Mutation,
        keyed: KeyedRequest | None,
        work: Work[T],
        guard: Guard | None,
    ) -> tuple[Any, bool, GiftCardError | None]:
        """Claim the key (or find its answer), guard, work, audit, seal, in ``session``'s transaction,
        uncommitted: (the answer, whether it is a replay, the guard's refusal)."""
        replayed = self.claim(session, mutation, keyed)
        if replayed is not None:
            return replayed, True, None
        return self.proceed(session, principal, mutation, keyed, work, guard)

    def claim(self, session: Session, mutation: Mutation, keyed: KeyedRequest | None) -> Any | None:
        """The first step: claim the key; the answer stored under it when it was taken, else None."""
        return None if keyed is None else self._idempotency.claim(session, keyed, mutation.shape)

    def proceed(
        self,
        session: Session,
        principal: Principal,
        mutation: Mutation,
        keyed: KeyedRequest | None,
        work: Work[T],
        guard: Guard | None,
    ) -> tuple[Any, bool, GiftCardError | None]:
        """The steps after a claim that took the key: guard, work, audit, seal (a refusal releases
        the key): (the answer, False, the guard's refusal)."""
        money.forget_kept(session)  # a card an earlier mutation of a batch locked is read again
        refusal = guard(session) if guard else None
        if refusal is not None:
            if keyed is not None:
                self.release(session, keyed)
            return None, False, refusal
        moves.audited(session)  # no flag left by an earlier mutation of the transaction (a batch's)
        result = work(session)
        if not moves.audited(session):  # a balance change writes its audit rows with it
            self._audit.mutated(session, principal, mutation.operation, result)
        if keyed is not None:
            self._idempotency.seal(session, keyed, result)
        return result, False, None

    def release(self, session: Session, keyed: KeyedRequest) -> None:
        """Give up a claimed key: a request that did not run keeps nothing under it."""
        self._idempotency.release(session, keyed)

    def audit_records(self, principal: Principal, operation: str, target: object) -> list[AuditRecord]:
        """The audit rows of a mutation on ``target``, for work that writes them itself."""
        return self._audit.mutation_records(principal, operation, target)

    def replay(self, principal: Principal, mutation: Mutation) -> Any:
        """The answer stored under a key already used (audited as a replay), or None: asked first by
        mutations whose checks depend on state that may change after the first answer (a code
        revoked, a PIN locked), so that a retry answers as the first request did."""
        keyed = self._idempotency.keyed(principal, mutation.key, mutation.operation, mutation.request)
        replayed = None if keyed is None else self._idempotency.committed(keyed, mutation.shape)
        if replayed is not None:
            self.note_replay(principal, mutation, replayed)
        return replayed

    def note_replay(self, principal: Principal, mutation: Mutation, answer: Any) -> None:
        """Audit and count an answer given again under its idempotency key."""
        self._audit.replayed(principal, mutation.operation, answer)
        self._events.note(Event.IDEMPOTENT_REPLAY)
