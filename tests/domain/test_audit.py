"""The audit trail's rules: which codes shown in full are disclosures, what a mutation, a replay and
a refusal record, and the checks on reading the trail (stand-ins for the unit of work and the audit
store, a fixed clock, no database)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from app.domain import audit as audit_module
from app.domain.audit import AUDIT_CURSOR, AuditFilter, AuditTrail
from app.domain.pages import decode_cursor, encode_cursor
from app.entities import Card, ShownCode, Transaction
from app.enums import CardState, CodeType, TransStatus, TransType
from app.errors import BadUserInputError, ForbiddenError
from app.policy import ANONYMOUS, Principal
from app.policy_file import load_policy
from app.store.audit import AuditCriteria, AuditRecord, AuditRow, AuditSlice
from tests.conftest import ROOT

POLICY = load_policy(ROOT / "permissions.yaml")
NOW = datetime(2026, 12, 1, 12, 0, 30, tzinfo=UTC)
ALICE = Principal("alice", frozenset({"ViewAuditLog"}), address="10.0.0.1", request_id="req-1")
SESSION: Any = object()


def _record(
    action: str,
    outcome: str = "OK",
    giftcard_id: int | None = None,
    field: str | None = None,
    count: int = 1,
    store_id: str | None = "default",
) -> AuditRecord:
    """A record as ALICE's calls write it at NOW (in her one store, unless about another's card)."""
    return AuditRecord(
        NOW, action, outcome, "alice", giftcard_id, field, "req-1", "10.0.0.1", count, store_id
    )


def _code(code_id: int, code_type: CodeType, code: str, masked: bool = False) -> ShownCode:
    return ShownCode(code_id, code_type, code, None, masked)


def _card(card_id: int, *codes: ShownCode, store_id: str = "default") -> Card[ShownCode]:
    return Card(
        card_id,
        None,
        "EUR",
        CardState.ACTIVE,
        0,
        NOW,
        NOW,
        None,
        None,
        None,
        None,
        None,
        None,
        codes,
        store_id=store_id,
    )


def _transaction(giftcard_id: int) -> Transaction:
    return Transaction(
        id=1,
        giftcard_id=giftcard_id,
        trans_type=TransType.USE,
        status=TransStatus.COMPLETED,
        amount=-1,
        currency="EUR",
        balance=0,
        available_balance=0,
        balance_before=1,
        balance_after=0,
        authorized_amount=None,
        hold_expires_at=None,
        partial=False,
        source_id=None,
        ref_no=None,
        note=None,
        created_at=NOW,
        settled_at=NOW,
    )


@dataclass
class Written:
    """Everything appended to the audit table, per session, and the units opened and committed."""

    appended: list[tuple[object, list[AuditRecord]]] = field(default_factory=list)
    units: list[Unit] = field(default_factory=list)
    commits: int = 0

    def append(self, target, records) -> None:
        self.appended.append((target, list(records)))

    def records(self) -> list[AuditRecord]:
        return [record for _, records in self.appended for record in records]


class Unit:
    """Stands in for the unit of work: a session of its own, commits counted."""

    def __init__(self, written: Written) -> None:
        self.written, self.session = written, object()

    def __enter__(self) -> Unit:
        self.written.units.append(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def commit(self) -> None:
        self.written.commits += 1


@dataclass
class AuditStore:
    """Stands in for the AuditStore's reads: a fixed page, and the criteria it was asked with."""

    rows: list[AuditRow] = field(default_factory=list)
    more: bool = False
    asked: list[tuple[AuditCriteria, int]] = field(default_factory=list)

    def events(self, criteria, limit):
        self.asked.append((criteria, limit))
        return AuditSlice(list(self.rows), self.more)


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def written(monkeypatch) -> Written:
    stand_in = Written()
    monkeypatch.setattr(audit_module, "store", stand_in)
    return stand_in


def _trail(
    written: Written, reads: AuditStore | None = None, clock: Clock | None = None, **options
) -> AuditTrail:
    return AuditTrail(lambda: Unit(written), reads or AuditStore(), POLICY, clock=clock or Clock(), **options)  # type: ignore[arg-type,return-value]


# --- disclosures -------------------------------------------------------------------------------


def test_a_maskable_code_shown_in_full_is_a_disclosure(written):
    card = _card(
        7,
        _code(1, CodeType.PHYSICAL, "PHYS12345678"),
        _code(2, CodeType.EXTERNAL, "EXT00001"),
        _code(3, CodeType.PERSONAL, "PERS87654321"),
        _code(4, CodeType.SHORT_PERSONAL, "SHORT123"),
    )
    assert _trail(written).disclosures(ALICE, [card]) == [
        _record("CODE_DISCLOSED", giftcard_id=7, field="PERSONAL"),
        _record("CODE_DISCLOSED", giftcard_id=7, field="SHORT_PERSONAL"),
    ]
    assert (written.appended, written.units) == ([], [])  # it writes nothing


def test_a_masked_code_is_no_disclosure(written):
    card = _card(7, _code(3, CodeType.PERSONAL, "********4321", masked=True))
    assert _trail(written).disclosures(ALICE, [card]) == []


def test_every_card_shown_counts(written):
    first = _card(7, _code(3, CodeType.PERSONAL, "PERS87654321"))
    second = _card(8, _code(5, CodeType.PERSONAL, "PERS11112222"))
    disclosed = _trail(written).disclosures(ALICE, [first, second])
    assert [(record.giftcard_id, record.field) for record in disclosed] == [(7, "PERSONAL"), (8, "PERSONAL")]


def test_the_code_the_caller_looked_the_card_up_by_is_no_disclosure(written):
    card = _card(
        7,
        _code(3, CodeType.PERSONAL, "PERS87654321"),
        _code(4, CodeType.SHORT_PERSONAL, "SHORT123"),
    )
    disclosed = _trail(written).disclosures(ALICE, [card], supplied_code="pers-8765 4321")
    assert [record.field for record in disclosed] == ["SHORT_PERSONAL"]


def test_another_supplied_code_leaves_the_disclosure_in(written):
    card = _card(7, _code(3, CodeType.PERSONAL, "PERS87654321"))
    assert len(_trail(written).disclosures(ALICE, [card], supplied_code="PERS87654320")) == 1


def test_a_caller_without_an_address_or_request_id_is_recorded_without_them(written):
    bare = Principal("bob", frozenset())
    _trail(written).mutated(SESSION, bare, "giftcardBlock", object())
    (record,) = written.records()
    assert (record.subject, record.request_id, record.client_address) == ("bob", None, None)


def test_a_record_fits_the_columns(written):
    long = Principal("s" * 200, frozenset(), address="a" * 100, request_id="r" * 100)
    card = _card(7, _code(3, CodeType.PERSONAL, "PERS87654321"))
    (record,) = _trail(written).disclosures(long, [card])
    assert (record.subject, record.request_id, record.client_address) == ("s" * 128, "r" * 64, "a" * 64)


# --- mutations, replays, refusals --------------------------------------------------------------


def test_a_mutation_records_itself_and_its_disclosures_in_its_own_session(written):
    card = _card(7, _code(3, CodeType.PERSONAL, "PERS87654321"))

    _trail(written).mutated(SESSION, ALICE, "giftcardAdd", card)

    assert written.appended == [
        (
            SESSION,
            [
                _record("giftcardAdd", giftcard_id=7),
                _record("CODE_DISCLOSED", giftcard_id=7, field="PERSONAL"),
            ],
        )
    ]
    assert written.units == []  # no transaction of its own


@pytest.mark.parametrize(
    ("result", "giftcard_id"),
    [(_transaction(9), 9), (object(), None), (type("Odd", (), {"giftcard_id": "9"})(), None)],
    ids=["a transaction", "no card", "a card id that is no int"],
)
def test_a_mutation_names_the_card_its_answer_is_about(written, result, giftcard_id):
    _trail(written).mutated(SESSION, ALICE, "giftcardTransAdd", result)
    assert written.records() == [_record("giftcardTransAdd", giftcard_id=giftcard_id)]


def test_a_mutation_is_recorded_in_its_cards_store_not_the_callers(written):
    card = _card(7, _code(3, CodeType.PERSONAL, "PERS87654321"), store_id="north")
    _trail(written).mutated(SESSION, ALICE, "giftcardAdd", card)
    assert written.records() == [
        _record("giftcardAdd", giftcard_id=7, store_id="north"),
        _record("CODE_DISCLOSED", giftcard_id=7, field="PERSONAL", store_id="north"),
    ]


@pytest.mark.parametrize(
    "stores", [frozenset({"north", "east"}), frozenset()], ids=["two stores", "no store"]
)
def test_a_refusal_of_a_caller_without_one_store_names_no_store(written, stores):
    trail = _trail(written)
    trail.refused(
        Principal("alice", ALICE.permissions, stores=stores, address="10.0.0.1", request_id="req-1"),
        "giftcardEdit",
        "CONFLICT",
    )
    trail.flush_refusals(everything=True)
    assert written.records() == [_record("giftcardEdit", "CONFLICT", store_id=None)]


def test_a_replay_is_recorded_in_a_short_transaction_of_its_own(written):
    card = _card(7, _code(3, CodeType.PERSONAL, "PERS87654321"))

    _trail(written).replayed(ALICE, "giftcardAdd", card)

    ((session, records),) = written.appended
    (unit,) = written.units
    assert session is unit.session
    assert records == [
        _record("giftcardAdd", "REPLAYED", giftcard_id=7),
        _record("CODE_DISCLOSED", giftcard_id=7, field="PERSONAL"),
    ]
    assert written.commits == 1


def test_recording_nothing_opens_no_transaction(written):
    _trail(written).record([])
    assert (written.units, written.commits, written.appended) == ([], 0, [])


def test_a_refusal_is_written_once_its_minute_is_over(written):
    clock = Clock()
    trail = _trail(written, clock=clock)

    trail.refused(ALICE, "giftcardTransAdd", "CARD_NOT_USABLE")
    trail.refused(ALICE, "giftcardTransAdd", "CARD_NOT_USABLE")
    assert trail.flush_refusals() == 0 and written.appended == []

    clock.now = NOW + timedelta(seconds=30)  # the next minute
    assert trail.flush_refusals() == 1
    assert written.records() == [_record("giftcardTransAdd", "CARD_NOT_USABLE", count=2)]


def test_every_refusal_is_written_when_the_server_stops(written):
    trail = _trail(written)
    trail.refused(ALICE, "giftcardEdit", "CONFLICT")
    assert trail.flush_refusals(everything=True) == 1
    assert written.records() == [_record("giftcardEdit", "CONFLICT")]


def test_a_refusal_without_a_token_is_not_recorded(written):
    trail = _trail(written)
    trail.refused(ANONYMOUS, "giftcardTransAdd", "UNAUTHENTICATED")
    assert trail.flush_refusals(everything=True) == 0
    assert written.appended == []


def test_the_refusal_bound_writes_what_is_held(written):
    trail = _trail(written, max_pending_refusals=2)
    trail.refused(ALICE, "giftcardEdit", "CONFLICT")
    trail.refused(ALICE, "giftcardBlock", "CONFLICT")
    assert sorted(record.action for record in written.records()) == ["giftcardBlock", "giftcardEdit"]


def test_long_names_are_cut_to_their_columns(written):
    trail = _trail(written)
    trail.refused(ALICE, "a" * 100, "o" * 100)
    trail.flush_refusals(everything=True)
    (record,) = written.records()
    assert (record.action, record.outcome) == ("a" * 64, "o" * 32)


# --- reading the trail -------------------------------------------------------------------------


def _row(event_id: int) -> AuditRow:
    return AuditRow(NOW, "giftcardAdd", "OK", "alice", 7, None, None, None, id=event_id)


def test_reading_the_trail_needs_view_audit_log(written):
    with pytest.raises(ForbiddenError) as caught:
        _trail(written).events(Principal("office", frozenset({"ListGiftCards"})))
    assert caught.value.message == "the token lacks the ViewAuditLog permission"


def test_a_page_of_events_follows_their_ids(written):
    reads = AuditStore([_row(4), _row(9)], more=True)

    page = _trail(written, reads).events(ALICE, first=2, after=encode_cursor(3, AUDIT_CURSOR))

    ((criteria, limit),) = reads.asked
    assert (criteria, limit) == (AuditCriteria(stores=("default",), after_id=3), 2)
    assert [decode_cursor(edge.cursor, "ga:") for edge in page.edges] == [4, 9]
    assert (page.has_next_page, page.has_previous_page) == (True, True)


def test_the_first_page_takes_thirty_events(written):
    reads = AuditStore()
    page = _trail(written, reads).events(ALICE)
    assert reads.asked == [(AuditCriteria(stores=("default",)), 30)]
    assert (page.has_next_page, page.has_previous_page) == (False, False)


def test_the_trail_is_read_in_the_callers_stores(written):
    reads = AuditStore()
    _trail(written, reads).events(Principal("alice", ALICE.permissions, stores=frozenset({"north", "east"})))
    _trail(written, reads).events(Principal("root", frozenset({"ViewAuditLog", "AllStores"})))
    assert [criteria.stores for criteria, _ in reads.asked] == [("east", "north"), None]


@pytest.mark.parametrize(
    ("kwargs", "message", "field"),
    [
        ({"first": 101}, "first: give 1 to 100 events per page", "first"),
        ({"after": encode_cursor(3, "gc:")}, "after: not a cursor of this listing", "after"),
    ],
)
def test_the_page_is_checked(written, kwargs, message, field):
    with pytest.raises(BadUserInputError) as caught:
        _trail(written).events(ALICE, **kwargs)
    assert (caught.value.message, caught.value.field) == (message, field)


def test_a_filter_becomes_the_criteria(written):
    reads = AuditStore()
    audit_filter = AuditFilter(
        subject="s" * 128,
        giftcard_id="12",
        action="a" * 64,
        outcome="o" * 32,
        occurred_after=datetime(2026, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))),
        occurred_before=datetime(2026, 2, 1, tzinfo=UTC),
    )

    _trail(written, reads).events(ALICE, audit_filter=audit_filter)

    ((criteria, _),) = reads.asked
    assert criteria == AuditCriteria(
        stores=("default",),
        subject="s" * 128,
        giftcard_id=12,
        action="a" * 64,
        outcome="o" * 32,
        occurred_from=datetime(2026, 1, 1, tzinfo=UTC),
        occurred_before=datetime(2026, 2, 1, tzinfo=UTC),
    )
    assert criteria.occurred_from is not None and criteria.occurred_from.tzinfo is UTC


def test_one_character_is_enough_for_a_filter(written):
    reads = AuditStore()
    _trail(written, reads).events(ALICE, audit_filter=AuditFilter(subject="s", action="a", outcome="o"))
    ((criteria, _),) = reads.asked
    assert (criteria.subject, criteria.action, criteria.outcome) == ("s", "a", "o")


@pytest.mark.parametrize(
    ("audit_filter", "message", "field"),
    [
        (AuditFilter(subject=""), "subject: 1 to 128 printable characters", "subject"),
        (AuditFilter(subject="s" * 129), "subject: 1 to 128 printable characters", "subject"),
        (AuditFilter(subject="a\tb"), "subject: 1 to 128 printable characters", "subject"),
        (AuditFilter(action="a" * 65), "action: 1 to 64 printable characters", "action"),
        (AuditFilter(action=""), "action: 1 to 64 printable characters", "action"),
        (AuditFilter(outcome="o" * 33), "outcome: 1 to 32 printable characters", "outcome"),
        (AuditFilter(outcome="\x00"), "outcome: 1 to 32 printable characters", "outcome"),
        (
            AuditFilter(giftcard_id="x"),
            "giftcard_id: a gift card id is an integer from 1 to 9223372036854775807",
            "giftcard_id",
        ),
        (
            AuditFilter(occurred_after=NOW, occurred_before=NOW),
            "occurred_before: must be later than occurred_after",
            "occurred_before",
        ),
        (
            AuditFilter(occurred_after=datetime(2026, 1, 1)),
            "occurred_after: give a time zone (e.g. 2027-01-01T00:00:00Z)",
            "occurred_after",
        ),
    ],
)
def test_a_filter_outside_what_an_event_can_hold_is_refused(written, audit_filter, message, field):
    reads = AuditStore()
    with pytest.raises(BadUserInputError) as caught:
        _trail(written, reads).events(ALICE, audit_filter=audit_filter)
    assert (caught.value.message, caught.value.field) == (message, field)
    assert reads.asked == []
