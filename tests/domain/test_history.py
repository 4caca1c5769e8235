"""Transaction history: lapsed holds shown EXPIRED, the filter's checks and the criteria it becomes,
and which code filters spend an untrusted caller's budget (stand-ins for the history store and the
throttle, no database)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from app.config import Settings
from app.domain.codes import CodeVault
from app.domain.history import TRANSACTION_CURSOR, History, TransactionFilter, _expire_if_lapsed
from app.domain.pages import decode_cursor, encode_cursor
from app.entities import Transaction
from app.enums import CodeType, TransStatus, TransType
from app.errors import BadUserInputError, ForbiddenError, UnauthenticatedError
from app.policy import ANONYMOUS, Principal
from app.policy_file import load_policy
from app.store.history import EntryCriteria, EntrySlice
from tests.conftest import ROOT
from tests.domain.stand_ins import Throttle

KEY = base64.b64encode(b"h" * 32).decode()
VAULT = CodeVault.from_settings(Settings(code_lookup_key=KEY, code_encryption_keys=f"k1:{KEY}"))
POLICY = load_policy(ROOT / "permissions.yaml")
CREATED = datetime(2026, 1, 1, tzinfo=UTC)
PAST, FUTURE = datetime(2000, 1, 1, tzinfo=UTC), datetime(2999, 1, 1, tzinfo=UTC)

READER = Principal("office", frozenset({"ListGiftCardTransactions", "ListGiftCards"}))
# May read history and find cards by code, but not list them: its code filters spend a budget.
CODE_READER = Principal(
    "shop",
    frozenset({"ListGiftCardTransactions", "FindGiftCardByCode", "UsePhysicalGiftCardCodes"}),
    address="10.0.0.1",
)
TRUSTED_CODE_READER = Principal("office", READER.permissions | CODE_READER.permissions)


def _transaction(
    entry_id: int = 1,
    status: TransStatus = TransStatus.AUTHORIZED,
    hold_expires_at: datetime | None = None,
) -> Transaction:
    return Transaction(
        id=entry_id,
        giftcard_id=7,
        trans_type=TransType.USE,
        status=status,
        amount=-100,
        currency="EUR",
        balance=400,
        available_balance=None,
        balance_before=500,
        balance_after=400,
        authorized_amount=-100,
        hold_expires_at=hold_expires_at,
        partial=False,
        source_id=None,
        ref_no=None,
        note=None,
        created_at=CREATED,
        settled_at=None,
    )


@dataclass
class HistoryStore:
    """Stands in for the HistoryStore: fixed answers, and what it was asked."""

    found: list[Transaction] = field(default_factory=list)
    more: bool = False
    live_code: bool = False
    asked: list[tuple[Any, ...]] = field(default_factory=list)

    def entries(self, criteria, limit):
        self.asked.append(("entries", criteria, limit))
        return EntrySlice(list(self.found), self.more)

    def latest(self, card_id, limit):
        self.asked.append(("latest", card_id, limit))
        return list(self.found)

    def open_authorizations(self, card_id, now):
        self.asked.append(("open_authorizations", card_id, now))
        return list(self.found)

    def available_balance(self, card_id, now):
        self.asked.append(("available_balance", card_id, now))
        return 321

    def has_live_code(self, lookup_hashes, code_type, stores):
        self.asked.append(("has_live_code", lookup_hashes, code_type, stores))
        return self.live_code


def _history(store: HistoryStore | None = None, throttle: Throttle | None = None) -> History:
    return History(store or HistoryStore(), VAULT, POLICY, throttle or Throttle())  # type: ignore[arg-type]


def _criteria(transaction_filter: TransactionFilter, principal: Principal = READER) -> EntryCriteria:
    """What the store is asked for the filter."""
    store = HistoryStore()
    _history(store).list(principal, transaction_filter=transaction_filter)
    ((_, criteria, _),) = [step for step in store.asked if step[0] == "entries"]
    assert isinstance(criteria, EntryCriteria)
    return criteria


def _refusal(transaction_filter: TransactionFilter, principal: Principal = READER, error=BadUserInputError):
    store = HistoryStore()
    with pytest.raises(error) as caught:
        _history(store).list(principal, transaction_filter=transaction_filter)
    assert store.asked == []
    return caught.value.message, caught.value.field


# --- lapsed holds ------------------------------------------------------------------------------


def test_a_hold_past_its_time_shows_as_expired():
    now = datetime(2026, 12, 1, tzinfo=UTC)
    lapsed = _transaction(hold_expires_at=now)
    assert _expire_if_lapsed(lapsed, now) == _transaction(status=TransStatus.EXPIRED, hold_expires_at=now)
    running = _transaction(hold_expires_at=now + timedelta(microseconds=1))
    assert _expire_if_lapsed(running, now) is running


@pytest.mark.parametrize("status", [TransStatus.COMPLETED, TransStatus.CANCELLED])
def test_a_settled_entry_keeps_its_status_whatever_its_hold_time(status):
    settled = _transaction(status=status, hold_expires_at=PAST)
    assert _expire_if_lapsed(settled, datetime(2026, 12, 1, tzinfo=UTC)) is settled


def test_an_authorization_without_a_hold_time_never_lapses():
    entry = _transaction(hold_expires_at=None)
    assert _expire_if_lapsed(entry, FUTURE) is entry


def test_every_read_shows_lapsed_holds_as_expired():
    store = HistoryStore([_transaction(1, hold_expires_at=PAST), _transaction(2, hold_expires_at=FUTURE)])
    history = _history(store)
    listed = [edge.node.status for edge in history.list(READER).edges]
    latest = [entry.status for entry in history.latest(READER, 7)]
    open_ones = [entry.status for entry in history.open_authorizations(READER, 7)]
    assert listed == latest == open_ones == [TransStatus.EXPIRED, TransStatus.AUTHORIZED]


# --- pages -------------------------------------------------------------------------------------


def test_reading_history_needs_its_permission():
    history = _history()
    no_history = Principal("office", frozenset({"ListGiftCards"}))
    for read in (
        lambda: history.list(no_history),
        lambda: history.latest(no_history, 7),
        lambda: history.open_authorizations(no_history, 7),
    ):
        with pytest.raises(ForbiddenError) as caught:
            read()
        assert caught.value.message == "the token lacks the ListGiftCardTransactions permission"
    with pytest.raises(UnauthenticatedError):
        history.list(ANONYMOUS)


def test_a_page_follows_transaction_ids_with_their_own_cursors():
    store = HistoryStore([_transaction(4), _transaction(9)], more=True)

    page = _history(store).list(READER, first=2, after=encode_cursor(3, TRANSACTION_CURSOR))

    ((_, criteria, limit),) = store.asked
    assert (criteria.after_id, limit) == (3, 2)
    assert [edge.node.id for edge in page.edges] == [4, 9]
    assert decode_cursor(page.end_cursor or "", "gt:") == 9
    assert (page.has_next_page, page.has_previous_page) == (True, True)


def test_the_first_page_has_nothing_before_it_and_takes_thirty():
    store = HistoryStore()
    page = _history(store).list(READER)
    ((_, criteria, limit),) = store.asked
    assert (criteria.after_id, limit, page.has_next_page, page.has_previous_page) == (None, 30, False, False)


def test_a_cursor_of_another_listing_is_refused():
    with pytest.raises(BadUserInputError) as caught:
        _history().list(READER, after=encode_cursor(3, "gc:"))
    assert (caught.value.message, caught.value.field) == ("after: not a cursor of this listing", "after")


@pytest.mark.parametrize("first", [0, 101])
def test_page_sizes_are_checked(first):
    history = _history()
    for read in (lambda: history.list(READER, first=first), lambda: history.latest(READER, 7, first)):
        with pytest.raises(BadUserInputError) as caught:
            read()
        assert (caught.value.message, caught.value.field) == (
            "first: give 1 to 100 transactions per page",
            "first",
        )


@pytest.mark.parametrize(("first", "limit"), [(None, 10), (10, 10), (100, 100), (1, 1)])
def test_a_card_shows_its_latest_transactions_ten_unless_asked(first, limit):
    store = HistoryStore()
    _history(store).latest(READER, 7, first)
    assert store.asked == [("latest", 7, limit)]


def test_open_authorizations_and_the_available_balance_are_read_now():
    store = HistoryStore()
    history = _history(store)
    before = datetime.now(UTC)
    history.open_authorizations(READER, 7)
    assert history.available_balance(7) == 321
    after = datetime.now(UTC)
    (_, open_card, open_now), (_, balance_card, balance_now) = store.asked
    assert (open_card, balance_card) == (7, 7)
    assert before <= open_now <= after and before <= balance_now <= after


# --- the filter --------------------------------------------------------------------------------


def test_no_filter_is_no_condition():
    criteria = _criteria(TransactionFilter())
    assert criteria == EntryCriteria(stores=("default",), now=criteria.now)
    assert criteria.now is not None and criteria.now.tzinfo is UTC


def test_a_filter_becomes_the_store_criteria():
    plus_two = timezone(timedelta(hours=2))
    criteria = _criteria(
        TransactionFilter(
            giftcard_id="12",
            member_id="M-1",
            status=TransStatus.EXPIRED,
            trans_type=TransType.ADJUST,
            source_id="s" * 128,
            ref_no="r" * 128,
            created_after=datetime(2026, 1, 1, 2, tzinfo=plus_two),
            created_before=datetime(2026, 2, 1, tzinfo=UTC),
        )
    )
    assert criteria == EntryCriteria(
        stores=("default",),
        giftcard_id=12,
        member_id="M-1",
        status="EXPIRED",
        trans_type="ADJUST",
        source_id="s" * 128,
        ref_no="r" * 128,
        created_from=CREATED,
        created_before=datetime(2026, 2, 1, tzinfo=UTC),
        now=criteria.now,
    )
    assert criteria.created_from is not None and criteria.created_from.tzinfo is UTC


@pytest.mark.parametrize(
    ("transaction_filter", "message", "field"),
    [
        (
            TransactionFilter(giftcard_id="0"),
            "giftcard_id: a gift card id is an integer from 1 to 9223372036854775807",
            "giftcard_id",
        ),
        (TransactionFilter(member_id="a b"), "member_id: 1 to 64 letters, digits or . _ : @ -", "member_id"),
        (TransactionFilter(source_id="s" * 129), "source_id: at most 128 characters", "source_id"),
        (TransactionFilter(source_id="a\nb"), "source_id: control characters are not allowed", "source_id"),
        (TransactionFilter(ref_no="r" * 129), "ref_no: at most 128 characters", "ref_no"),
        (TransactionFilter(ref_no="a\x00b"), "ref_no: control characters are not allowed", "ref_no"),
        (
            TransactionFilter(created_after=CREATED, created_before=CREATED),
            "created_before: must be later than created_after",
            "created_before",
        ),
        (
            TransactionFilter(created_after=datetime(2026, 1, 1)),
            "created_after: give a time zone (e.g. 2027-01-01T00:00:00Z)",
            "created_after",
        ),
    ],
)
def test_a_filter_outside_what_a_transaction_can_hold_is_refused(transaction_filter, message, field):
    assert _refusal(transaction_filter) == (message, field)


def test_filtering_by_member_needs_list_gift_cards():
    history_only = Principal("clerk", frozenset({"ListGiftCardTransactions"}))
    assert _refusal(TransactionFilter(member_id="M1"), history_only, ForbiddenError) == (
        "member_id: filtering by member needs the ListGiftCards permission",
        "member_id",
    )


@pytest.mark.parametrize(
    "transaction_filter",
    [
        TransactionFilter(code="PHYS12345678", code_type=CodeType.PHYSICAL),
        TransactionFilter(code_type=CodeType.PHYSICAL),
        TransactionFilter(code="PHYS12345678"),
    ],
    ids=["code and type", "type alone", "code alone"],
)
def test_filtering_by_code_needs_find_by_code(transaction_filter):
    assert _refusal(transaction_filter, READER, ForbiddenError) == (
        "code: filtering by code needs the FindGiftCardByCode permission",
        "code",
    )


@pytest.mark.parametrize(
    ("transaction_filter", "missing"),
    [
        (TransactionFilter(code="PHYS12345678"), "code_type"),
        (TransactionFilter(code_type=CodeType.PHYSICAL), "code"),
    ],
)
def test_a_code_filter_needs_both_code_and_type(transaction_filter, missing):
    assert _refusal(transaction_filter, TRUSTED_CODE_READER) == (
        f"{missing}: give both code_type and code",
        missing,
    )


def test_a_code_filter_needs_the_type_use_permission():
    assert _refusal(
        TransactionFilter(code="EXT00001", code_type=CodeType.EXTERNAL), TRUSTED_CODE_READER, ForbiddenError
    ) == ("the token lacks the UseExternalGiftCardCodes permission for EXTERNAL codes", "code_type")


def test_a_malformed_code_is_refused():
    assert _refusal(TransactionFilter(code="ab", code_type=CodeType.PHYSICAL), TRUSTED_CODE_READER) == (
        "code: a code is 4 to 64 letters and digits (spaces and dashes are ignored)",
        "code",
    )


def test_a_code_filter_asks_for_the_card_holding_the_normalised_code():
    criteria = _criteria(
        TransactionFilter(code="phys-1234 5678", code_type=CodeType.PHYSICAL), TRUSTED_CODE_READER
    )
    assert (criteria.code_lookup_hashes, criteria.code_type) == (
        VAULT.lookup_hashes("PHYS12345678"),
        "PHYSICAL",
    )


@pytest.mark.parametrize(
    ("principal", "stores"),
    [
        (Principal("office", READER.permissions, stores=frozenset({"north", "east"})), ("east", "north")),
        (Principal("office", READER.permissions | {"AllStores"}), None),
    ],
    ids=["two stores", "every store"],
)
def test_the_history_is_read_in_the_callers_stores(principal, stores):
    assert _criteria(TransactionFilter(), principal).stores == stores


# --- code filters and the attempt budget -------------------------------------------------------

CODE_FILTER = TransactionFilter(code="PHYS12345678", code_type=CodeType.PHYSICAL)


def test_a_code_filter_that_finds_rows_gives_the_unit_back():
    throttle, store = Throttle(), HistoryStore([_transaction()])
    _history(store, throttle).list(CODE_READER, first=5, transaction_filter=CODE_FILTER)
    # the budget of the caller's stores (test_attempts: each store has its own)
    assert throttle.reserved == [(("subject", "default|shop"), ("address", "default|10.0.0.1"))]
    assert throttle.given_back == 1
    ((step, _, limit),) = store.asked  # rows are enough: no second question
    assert (step, limit) == ("entries", 5)


def test_a_code_filter_on_a_live_code_without_rows_gives_the_unit_back():
    throttle, store = Throttle(), HistoryStore(live_code=True)
    _history(store, throttle).list(CODE_READER, transaction_filter=CODE_FILTER)
    assert store.asked[-1] == ("has_live_code", VAULT.lookup_hashes("PHYS12345678"), "PHYSICAL", ("default",))
    assert (len(throttle.reserved), throttle.given_back) == (1, 1)


def test_a_code_filter_on_an_unknown_code_keeps_the_unit():
    throttle = Throttle()
    page = _history(HistoryStore(), throttle).list(CODE_READER, transaction_filter=CODE_FILTER)
    assert page.edges == ()
    assert (len(throttle.reserved), throttle.given_back) == (1, 0)


@pytest.mark.parametrize(
    ("principal", "transaction_filter"),
    [(TRUSTED_CODE_READER, CODE_FILTER), (CODE_READER, TransactionFilter(giftcard_id="7"))],
    ids=["trusted caller", "no code filter"],
)
def test_only_an_untrusted_code_filter_spends_the_budget(principal, transaction_filter):
    throttle = Throttle()
    _history(HistoryStore(), throttle).list(principal, transaction_filter=transaction_filter)
    assert throttle.reserved == []
