"""The audit trail: every mutation (done, replayed or refused) and every disclosure of a code.

A disclosure is a maskable code (PERSONAL, SHORT_PERSONAL) shown in full, through the type's
``unmask`` permission or in the answer of the mutation that generated it, and every code printed on
a certificate (app.domain.certificates); codes every ``Use…`` holder sees in full (PHYSICAL,
EXTERNAL) are not otherwise, so masked storefront lookups never write. A
mutation's events commit or roll back with it; replays and disclosing reads write in a short
transaction of their own; refusals are counted per minute (:mod:`app.domain.refusals`). An event
never holds a code, a PIN, a secret, a note or an idempotency key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlmodel import Session

from app.db import UnitOfWork
from app.domain.codes import normalise
from app.domain.identifiers import parse_card_id
from app.domain.masking import ShownCard
from app.domain.pages import Page, created_range, decode_cursor, edges, page_size
from app.domain.refusals import MAX_PENDING, RefusalCounts
from app.domain.scoping import narrow
from app.entities import Card
from app.enums import CodeType
from app.errors import BadUserInputError
from app.policy import Permission, Policy, Principal
from app.store import audit as store
from app.store.audit import AuditCriteria, AuditRecord, AuditRow, AuditStore
from app.store.scope import Stores

OK = "OK"
REPLAYED = "REPLAYED"  # an idempotency key's stored response, sent again
CODE_DISCLOSED = "CODE_DISCLOSED"  # a maskable code shown in full; `field` is its type

AUDIT_CURSOR = "ga:"
# Column widths of audit_events.
_SUBJECT, _ACTION, _OUTCOME, _REQUEST_ID, _ADDRESS = 128, 64, 32, 64, 64
_utc_now = partial(datetime.now, UTC)


def _fit(text: str | None, limit: int) -> str | None:
    return None if text is None else text[:limit]


def _record(
    principal: Principal,
    now: datetime,
    action: str,
    outcome: str,
    target: object = None,
    field: str | None = None,
) -> AuditRecord:
    """The event of ``action`` on ``target`` (a card, a transaction, or None), in the target's
    store, else in the caller's when it acts on exactly one."""
    card_id = getattr(target, "giftcard_id", None)  # a card's id, or a transaction's card
    store_id = getattr(target, "store_id", None)
    if store_id is None and not principal.has(Permission.ALL_STORES) and len(principal.stores) == 1:
        (store_id,) = principal.stores
    return AuditRecord(
        occurred_at=now,
        action=action[:_ACTION],
        outcome=outcome[:_OUTCOME],
        subject=_fit(principal.subject, _SUBJECT),
        giftcard_id=card_id if isinstance(card_id, int) else None,
        field=field,
        request_id=_fit(principal.request_id, _REQUEST_ID),
        client_address=_fit(principal.address, _ADDRESS),
        store_id=store_id if isinstance(store_id, str) else None,
    )


class AuditTrail:
    """Writes audit events and reads them back; every method is safe to call from a worker thread."""

    def __init__(
        self,
        new_unit: Callable[[], UnitOfWork],
        store: AuditStore,
        policy: Policy,
        *,
        clock: Callable[[], datetime] = _utc_now,
        max_pending_refusals: int = MAX_PENDING,
    ) -> None:
        self._new_unit = new_unit
        self._store = store
        self.clock = clock  # the time events are stamped with, and refusal minutes end by
        self._refusals = RefusalCounts(self.record, max_pending=max_pending_refusals)
        # The code types a caller can see masked: only those are disclosed by being shown in full.
        self._maskable = frozenset(
            code_type for code_type, rule in policy.code_types.items() if rule.unmask is not None
        )

    def mutated(self, session: Session, principal: Principal, operation: str, result: object) -> None:
        """In the mutation's transaction: the mutation, and each code its answer shows in full."""
        store.append(session, self._answered(principal, operation, OK, result))

    def mutation_records(self, principal: Principal, operation: str, target: object) -> list[AuditRecord]:
        """What :meth:`mutated` appends for a mutation on ``target``, for a statement that writes
        them with the mutation's own rows (app.store.moves)."""
        return self._answered(principal, operation, OK, target)

    def replayed(self, principal: Principal, operation: str, result: object) -> None:
        """A stored response sent again (it can show a generated code in full again)."""
        self.record(self._answered(principal, operation, REPLAYED, result))

    def refused(self, principal: Principal, operation: str, outcome: str) -> None:
        """A mutation that failed with the error code ``outcome`` (its writes rolled back), counted
        with the refusals of its minute (see :mod:`app.domain.refusals`). Calls without a token are
        left out: there is no one to name, and the trail must not grow with unauthenticated traffic."""
        if not principal.is_anonymous:
            self._refusals.add(_record(principal, self.clock(), operation, outcome))

    def flush_refusals(self, *, everything: bool = False) -> int:
        """Write the refusals of minutes that are over (all with ``everything``); return the rows written."""
        return self._refusals.flush(self.clock(), everything=everything)

    def disclosures(
        self, principal: Principal, cards: Iterable[ShownCard], *, supplied_code: str | None = None
    ) -> list[AuditRecord]:
        """A CODE_DISCLOSED event per maskable code shown in full on ``cards``, leaving out the code
        the caller looked the card up by (it told us that one). Writes nothing."""
        shown = [
            (card, code)
            for card in cards
            for code in card.codes
            if not code.is_masked and code.code_type in self._maskable
        ]
        if not shown:  # the common case: return before anything else is computed
            return []
        now = self.clock()
        supplied = None if supplied_code is None else normalise(supplied_code)
        return [
            _record(principal, now, CODE_DISCLOSED, OK, card, code.code_type.value)
            for card, code in shown
            if normalise(code.code) != supplied
        ]

    def certificate_printed(self, principal: Principal, card: Card[Any], code_type: CodeType) -> None:
        """A certificate of ``card`` shows its code of ``code_type`` in full: a CODE_DISCLOSED event,
        whatever the type (a printed code leaves the server however its type is shown)."""
        self.record([_record(principal, self.clock(), CODE_DISCLOSED, OK, card, code_type.value)])

    def record(self, records: Sequence[AuditRecord]) -> None:
        """Append ``records`` in one short transaction of their own (nothing when empty)."""
        if records:
            with self._new_unit() as unit:
                store.append(unit.session, records)
                unit.commit()

    def _answered(
        self, principal: Principal, operation: str, outcome: str, result: object
    ) -> list[AuditRecord]:
        event = _record(principal, self.clock(), operation, outcome, result)
        cards = (result,) if isinstance(result, Card) else ()
        return [event, *self.disclosures(principal, cards)]

    def events(
        self,
        principal: Principal,
        *,
        first: int | None = None,
        after: str | None = None,
        audit_filter: AuditFilter | None = None,
    ) -> Page[AuditEventView]:
        """The trail page by page in id order (ViewAuditLog), paged as :mod:`app.domain.pages` says."""
        principal.require(Permission.VIEW_AUDIT_LOG)
        audit_filter = audit_filter or AuditFilter()
        limit = page_size(first, "events")
        after_id = None if after is None else decode_cursor(after, AUDIT_CURSOR)
        criteria = _criteria(audit_filter, after_id, narrow(principal, audit_filter.store_id).store_ids())
        found = self._store.events(criteria, limit)
        return Page(
            edges(found.events, AUDIT_CURSOR),
            has_next_page=found.more,
            has_previous_page=after is not None,  # pages only go forward
        )


@dataclass(frozen=True, slots=True)
class AuditTarget:
    """What an event names of a mutation's target before the answer exists: its card and store."""

    giftcard_id: int
    store_id: str


@dataclass(frozen=True)
class AuditFilter:
    """Which events to list; None leaves a condition out."""

    subject: str | None = None
    giftcard_id: str | None = None
    action: str | None = None
    outcome: str | None = None
    occurred_after: datetime | None = None  # inclusive
    occurred_before: datetime | None = None  # exclusive
    store_id: str | None = None  # only this one of the caller's stores


# An event as the trail shows it: every column of the row (none holds anything to hide).
AuditEventView = AuditRow


def _criteria(given: AuditFilter, after_id: int | None, stores: Stores) -> AuditCriteria:
    for text, name, limit in (
        (given.subject, "subject", _SUBJECT),
        (given.action, "action", _ACTION),
        (given.outcome, "outcome", _OUTCOME),
    ):
        # What an event can hold, so a filter outside it is a mistake, not an empty page.
        if text is not None and not (0 < len(text) <= limit and text.isprintable()):
            raise BadUserInputError(f"{name}: 1 to {limit} printable characters", field=name)
    card_id = None if given.giftcard_id is None else parse_card_id(given.giftcard_id, "giftcard_id")
    occurred_from, occurred_before = created_range(
        given.occurred_after, given.occurred_before, ("occurred_after", "occurred_before")
    )
    return AuditCriteria(
        stores=stores,
        after_id=after_id,
        subject=given.subject,
        giftcard_id=card_id,
        action=given.action,
        outcome=given.outcome,
        occurred_from=occurred_from,
        occurred_before=occurred_before,
    )
