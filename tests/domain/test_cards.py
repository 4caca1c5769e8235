"""Creating cards and editing their codes, member and fields: the rules of each step and the events
they record, with stand-ins for the mutation runner and the card store (``app.store.cards``, which
the domain calls with the runner's session) and for the reservation check (no database)."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from app.config import Settings
from app.domain import card_edits as card_edits_module
from app.domain import cards as cards_module
from app.domain.balances import BalanceRules
from app.domain.card_requests import CardDetails, CardEdit, CodeChanges, NewCard
from app.domain.cards import Cards, card_view
from app.domain.codes import CodeVault
from app.domain.masking import CodeMasking, ShownCard
from app.domain.mutations import Mutation
from app.domain.pins import PinKeys
from app.entities import Card, ShownCode, StoredCode
from app.enums import CardState, CodeType, Operation
from app.errors import BadUserInputError, ConflictError, ForbiddenError, NotFoundError
from app.models import GiftCard, GiftCardCode
from app.policy import Principal
from app.policy_file import load_policy
from tests.conftest import ROOT
from tests.domain.stand_ins import Runner

KEY = base64.b64encode(b"k" * 32).decode()
VAULT = CodeVault.from_settings(Settings(code_lookup_key=KEY, code_encryption_keys=f"k1:{KEY}"))
PINS = PinKeys({"p1": b"p" * 32})
POLICY = load_policy(ROOT / "permissions.yaml")
MASKING = CodeMasking(VAULT, POLICY)
RULES = BalanceRules(1000, timedelta(minutes=15))
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)

# May use PHYSICAL and PERSONAL codes, but sees PERSONAL ones masked and EXTERNAL ones not at all.
OPERATOR = Principal(
    "operator",
    frozenset({"CreateGiftCard", "EditGiftCard", "UsePhysicalGiftCardCodes", "UseCryptoGiftCardCodes"}),
)


class CardStore:
    """Stands in for ``app.store.cards``: cards and code rows in memory, and the events recorded.
    It is only ever asked within its one session (the runner's transaction)."""

    def __init__(self) -> None:
        self.session = Session(self)
        self.cards: dict[int, GiftCard] = {}
        self.codes: list[GiftCardCode] = []
        self.events: list[tuple[int, str, str | None]] = []
        self.pins: dict[int, tuple[str, str | None]] = {}
        self.stamps: list[datetime] = []  # when each event happened
        self.flushes = 0
        self.stores = {"default", "north"}  # the stores table
        self.locked_in: list[tuple[str, ...] | None] = []  # the stores each card lock was asked for

    # what the tests put in
    def add(self, card: GiftCard, *codes: tuple[CodeType, str]) -> GiftCard:
        assert card.id is not None
        self.cards[card.id] = card
        self.add_codes(self.session, card, [_row(code_type, code) for code_type, code in codes])
        return card

    def live(self, card_id: int) -> dict[CodeType, GiftCardCode]:
        return {CodeType(code.code_type): code for code in self.live_codes(self.session, card_id)}

    def event_names(self) -> list[tuple[str, str | None]]:
        return [(event, detail) for _, event, detail in self.events]

    # what the domain asks
    def code_hash_taken(self, session, lookup_hashes, code_type, store_id):
        assert session is self.session
        return any(
            code.lookup_hash in lookup_hashes and code.code_type == code_type and code.store_id == store_id
            for code in self.codes
        )

    def store_exists(self, session, store_id):
        assert session is self.session
        return store_id in self.stores

    def add_card(self, session, card):
        assert session is self.session
        card.id = max(self.cards, default=0) + 1
        self.cards[card.id] = card
        return card.id

    def add_codes(self, session, card, rows):
        assert session is self.session
        ids = []
        for row in rows:
            row.id, row.giftcard_id, row.store_id = len(self.codes) + 1, card.id, card.store_id
            self.codes.append(row)
            ids.append(row.id)
        return ids

    def set_pin(self, session, code_id, value, key_ids):
        assert session is self.session
        self.pins[code_id] = (value, key_ids)

    def card_for_update(self, session, card_id, stores):
        assert session is self.session
        self.locked_in.append(stores)
        card = self.cards.get(card_id)
        return card if card is not None and (stores is None or card.store_id in stores) else None

    def live_codes(self, session, card_id):
        assert session is self.session
        return [code for code in self.codes if code.giftcard_id == card_id and code.revoked_at is None]

    def card_rows(self, session, card_id):
        assert session is self.session
        card = self.cards[card_id]
        codes = tuple(
            StoredCode(
                code.id or 0,
                CodeType(code.code_type),
                code.ciphertext,
                code.key_id,
                code.last4,
                code.expires_on,
            )
            for code in self.live_codes(session, card_id)
        )
        fields: tuple[Any, ...] = (
            card.member_id,
            card.currency,
            CardState(card.state),
            card.balance,
            card.created_at,
        )
        rest: tuple[Any, ...] = (
            card.created_by,
            card.usable_from,
            card.expires_at,
            card.note,
            card.source_id,
            card.ref_no,
        )
        last = (card.initial_value, card.store_id)
        values: tuple[Any, ...] = (card_id, *fields, card.updated_at, *rest, codes, *last)
        return [Card(*values)]

    def add_event(self, session, card, event, actor, now, detail=None):
        assert session is self.session
        assert actor == "operator"
        assert (
            card.id is not None and self.cards[card.id] is card
        )  # the card itself: its event goes to its store
        self.events.append((card.id, event, detail))
        self.stamps.append(now)


class Session:
    """Stands in for the runner's session: only flushes are asked of it directly."""

    def __init__(self, store: CardStore) -> None:
        self.store = store

    def flush(self) -> None:
        self.store.flushes += 1


def _row(code_type: CodeType, code: str) -> GiftCardCode:
    return GiftCardCode(code_type=code_type.value, **VAULT.seal(code, code_type).columns, created_at=LONG_AGO)


def _card(
    card_id: int = 7, member_id: str | None = None, state: CardState = CardState.ACTIVE, **fields
) -> GiftCard:
    return GiftCard(
        id=card_id,
        member_id=member_id,
        currency="EUR",
        state=state.value,
        balance=500,
        created_at=LONG_AGO,
        updated_at=LONG_AGO,
        **fields,
    )


@pytest.fixture
def store(monkeypatch) -> CardStore:
    stand_in = CardStore()
    monkeypatch.setattr(cards_module, "store", stand_in)
    monkeypatch.setattr(card_edits_module, "store", stand_in)

    def program_for_card(session, store_id, program_id):  # no store here has a program
        assert (session, program_id) == (stand_in.session, None)
        return None

    monkeypatch.setattr(cards_module, "program_for_card", program_for_card)
    return stand_in


@pytest.fixture
def reserved(monkeypatch, store) -> list[tuple[object, ...]]:
    """The reservation checks asked for; none of the codes is reserved."""
    asked: list[tuple[object, ...]] = []

    def take_reserved_code(session, lookup_hashes, plan, principal, now, store_id):
        assert session is store.session
        asked.append((lookup_hashes, plan.code_type, principal.subject, plan.field, now, store_id))

    monkeypatch.setattr(cards_module, "take_reserved_code", take_reserved_code)
    return asked


def _cards(store: CardStore) -> tuple[Cards, Runner]:
    runner = Runner(store)
    return Cards(runner, VAULT, PINS, MASKING, "USD", RULES), runner  # type: ignore[arg-type]


def _shown(card: ShownCard) -> list[tuple[CodeType, str, bool]]:
    return [(code.code_type, code.code, code.is_masked) for code in card.codes]


# --- card_view ---------------------------------------------------------------------------------


def test_a_card_is_viewed_as_the_caller_may_see_it(store):
    store.add(_card(), (CodeType.PHYSICAL, "PHYS12345678"), (CodeType.PERSONAL, "PERS87654321"))
    view = card_view(store.session, MASKING, OPERATOR, 7)
    assert _shown(view) == [
        (CodeType.PHYSICAL, "PHYS12345678", False),
        (CodeType.PERSONAL, "********4321", True),
    ]


def test_codes_created_by_the_call_are_shown_in_full_in_id_order(store):
    store.add(
        _card(),
        (CodeType.PHYSICAL, "PHYS12345678"),
        (CodeType.EXTERNAL, "EXT000000001"),
        (CodeType.PERSONAL, "PERS87654321"),
    )
    store.codes[1].expires_on = date(2030, 1, 1)
    view = card_view(store.session, MASKING, OPERATOR, 7, {2: "EXT000000001", 3: "PERS87654321"})
    # Even a type the caller may not see at all: the call that made a code answers with it once.
    assert view.codes == (
        ShownCode(1, CodeType.PHYSICAL, "PHYS12345678", None, False),
        ShownCode(2, CodeType.EXTERNAL, "EXT000000001", date(2030, 1, 1), False),
        ShownCode(3, CodeType.PERSONAL, "PERS87654321", None, False),
    )


# --- creating a card ---------------------------------------------------------------------------


def test_a_new_card_starts_pending_and_empty_with_its_codes_in_full(store, reserved):
    cards, runner = _cards(store)
    changes = CodeChanges(physical_code="phys-1234-5678", physical_pin="0042", add_personal_code=True)
    details = CardDetails(note="for Ann", expires_at=datetime(2030, 1, 1, tzinfo=UTC))

    shown = cards.create(OPERATOR, NewCard(changes, "EUR", "M1", details), "key-1")

    card = store.cards[1]
    assert (card.state, card.balance, card.currency, card.member_id, card.created_by) == (
        "PENDING",
        0,
        "EUR",
        "M1",
        "operator",
    )
    assert (card.note, card.expires_at, card.created_at == card.updated_at) == (
        "for Ann",
        details.expires_at,
        True,
    )
    assert card.created_at.tzinfo is UTC
    physical, personal = shown.codes
    assert (physical.code, physical.is_masked) == ("PHYS12345678", False)
    assert (personal.code_type, personal.is_masked, len(personal.code)) == (CodeType.PERSONAL, False, 20)
    assert (store.events, store.stamps) == ([(1, "CREATED", None)], [card.created_at])
    ((operation, request, shape, key),) = [(m.operation, m.request, m.shape, m.key) for m in runner.mutations]
    assert (operation, shape, key, request.member_id) == (Operation.CREATE_CARD, ShownCard, "key-1", "M1")
    assert runner.principals == [OPERATOR]


def test_a_new_code_is_stored_sealed_with_its_pin_keyed_to_its_row(store, reserved):
    cards, _ = _cards(store)
    expiry = date(2030, 1, 1)

    cards.create(OPERATOR, NewCard(CodeChanges("PHYS12345678", "0042", expiry)), None)

    (row,) = store.codes
    assert VAULT.open(row.ciphertext, row.key_id, "PHYSICAL") == "PHYS12345678"
    assert (row.lookup_hash, row.last4, row.expires_on) == (
        VAULT.lookup_hashes("PHYS12345678")[0],
        "5678",
        expiry,
    )
    assert (row.lookup_key_id, row.key_id, row.created_at) == (
        VAULT.lookup_key_id,
        "k1",
        store.cards[1].created_at,
    )
    stored = PINS.hash(row.id or 0, "0042")
    assert store.pins == {row.id: (stored.value, stored.key_ids)}


def test_a_code_without_a_pin_sets_none(store, reserved):
    cards, _ = _cards(store)
    cards.create(OPERATOR, NewCard(CodeChanges(external_code="EXT00001")), None)
    assert store.pins == {}


def test_a_new_card_takes_the_default_currency_unless_given_one(store, reserved):
    cards, _ = _cards(store)
    cards.create(OPERATOR, NewCard(CodeChanges(physical_code="PHYS00000001")), None)
    cards.create(OPERATOR, NewCard(CodeChanges(physical_code="PHYS00000002"), currency="JPY"), None)
    assert [card.currency for card in store.cards.values()] == ["USD", "JPY"]


def test_an_unsupported_currency_is_refused_before_the_runner(store):
    cards, runner = _cards(store)
    with pytest.raises(BadUserInputError) as caught:
        cards.create(OPERATOR, NewCard(CodeChanges(physical_code="PHYS12345678"), currency="XXX"), None)
    assert (caught.value.message, caught.value.field) == (
        "currency: not a supported ISO 4217 currency code (such as USD)",
        "currency",
    )
    assert runner.mutations == []


def test_creating_needs_its_permission(store):
    cards, runner = _cards(store)
    with pytest.raises(ForbiddenError) as caught:
        cards.create(
            Principal("clerk", frozenset({"EditGiftCard"})), NewCard(CodeChanges("PHYS12345678")), None
        )
    assert caught.value.message == "the token lacks the CreateGiftCard permission"
    assert runner.mutations == []


def test_a_code_taken_before_is_a_conflict_naming_its_field(store, reserved):
    store.add(_card(3), (CodeType.EXTERNAL, "EXT00001"))
    cards, _ = _cards(store)
    with pytest.raises(ConflictError) as caught:
        cards.create(
            OPERATOR, NewCard(CodeChanges(physical_code="PHYS0001", external_code="ext-00001")), None
        )
    assert (caught.value.message, caught.value.field) == (
        "external_code: a EXTERNAL code with that value already exists",
        "external_code",
    )
    assert list(store.cards) == [3]


def test_the_same_value_under_another_type_is_no_conflict(store, reserved):
    store.add(_card(3), (CodeType.EXTERNAL, "SAME00001"))
    cards, _ = _cards(store)
    cards.create(OPERATOR, NewCard(CodeChanges(physical_code="SAME00001")), None)
    assert len(store.cards) == 2


def test_every_new_code_is_checked_against_reserved_stock(store, reserved):
    cards, _ = _cards(store)
    cards.create(OPERATOR, NewCard(CodeChanges(physical_code="PHYS0001", external_code="EXT00001")), None)
    now = store.cards[1].created_at
    assert reserved == [
        (VAULT.lookup_hashes("PHYS0001"), CodeType.PHYSICAL, "operator", "physical_code", now, "default"),
        (VAULT.lookup_hashes("EXT00001"), CodeType.EXTERNAL, "operator", "external_code", now, "default"),
    ]


NORTH = Principal("operator", OPERATOR.permissions, stores=frozenset({"north"}))
EVERY_STORE = Principal("operator", OPERATOR.permissions | {"AllStores"})


def test_a_new_card_and_its_codes_go_to_the_callers_one_store(store, reserved):
    cards, _ = _cards(store)
    cards.create(NORTH, NewCard(CodeChanges(physical_code="PHYS0001")), None)
    (row,) = store.codes
    assert (store.cards[1].store_id, row.store_id) == ("north", "north")
    assert [asked[-1] for asked in reserved] == ["north"]  # the store's reserved stock


def test_a_code_taken_in_another_store_is_no_conflict(store, reserved):
    store.add(_card(3), (CodeType.PHYSICAL, "PHYS0001"))
    cards, _ = _cards(store)
    cards.create(NORTH, NewCard(CodeChanges(physical_code="PHYS0001")), None)
    assert [card.store_id for card in store.cards.values()] == ["default", "north"]


def test_a_caller_of_every_store_creates_in_a_store_that_exists_only(store, reserved):
    cards, _ = _cards(store)
    with pytest.raises(NotFoundError) as caught:
        cards.create(EVERY_STORE, NewCard(CodeChanges("PHYS0001"), store_id="south"), None)
    assert (caught.value.message, caught.value.field) == ("store_id: no such store", "store_id")
    assert store.cards == {}
    cards.create(EVERY_STORE, NewCard(CodeChanges("PHYS0001"), store_id="north"), None)
    assert store.cards[1].store_id == "north"


def test_a_card_outside_the_callers_stores_cannot_be_edited(store):
    store.add(_card(store_id="north"))
    assert _edit_refusal(store, CardEdit("7", details=CardDetails(note="n")), NotFoundError) == (
        "id: no gift card with this id",
        "id",
    )
    assert (store.locked_in, store.events) == ([("default",)], [])


def test_a_new_code_on_an_edit_goes_to_the_cards_store(store, reserved):
    store.add(_card(store_id="north"), (CodeType.PHYSICAL, "OLD000000001"))
    store.add(_card(8), (CodeType.EXTERNAL, "EXT00001"))  # the default store's: no conflict in north
    both = Principal("operator", OPERATOR.permissions, stores=frozenset({"default", "north"}))
    _edit(store, CardEdit("7", CodeChanges(external_code="EXT00001")), both)
    assert [(code.giftcard_id, code.store_id) for code in store.codes] == [
        (7, "north"),
        (8, "default"),
        (7, "north"),
    ]
    assert [asked[-1] for asked in reserved] == ["north"]


# --- editing a card ----------------------------------------------------------------------------


def _edit(store: CardStore, edit: CardEdit, principal: Principal = OPERATOR) -> ShownCard:
    cards, _ = _cards(store)
    return cards.edit(principal, edit, None)


def _edit_refusal(store: CardStore, edit: CardEdit, error=BadUserInputError) -> tuple[str, str | None]:
    with pytest.raises(error) as caught:
        _edit(store, edit)
    return caught.value.message, caught.value.field


def test_editing_needs_its_permission_and_a_well_formed_id(store):
    cards, runner = _cards(store)
    with pytest.raises(ForbiddenError):
        cards.edit(Principal("clerk", frozenset({"CreateGiftCard"})), CardEdit("7", unlock_pin=True), None)
    with pytest.raises(BadUserInputError) as caught:
        cards.edit(OPERATOR, CardEdit("seven", unlock_pin=True), None)
    assert (caught.value.message, caught.value.field) == (
        "id: a gift card id is an integer from 1 to 9223372036854775807",
        "id",
    )
    assert runner.mutations == []


def test_an_edit_is_run_as_one_mutation(store, reserved):
    store.add(_card())
    cards, runner = _cards(store)
    edit = CardEdit("7", details=CardDetails(note="n"))
    cards.edit(OPERATOR, edit, "key-2")
    assert runner.mutations == [Mutation(Operation.EDIT_CARD, edit, ShownCard, "key-2")]
    assert runner.principals == [OPERATOR]


def test_an_unknown_card_is_not_found(store):
    assert _edit_refusal(store, CardEdit("7", unlock_pin=True), NotFoundError) == (
        "id: no gift card with this id",
        "id",
    )


def test_a_deactivated_card_cannot_change(store):
    store.add(_card(state=CardState.DEACTIVATED))
    assert _edit_refusal(store, CardEdit("7", details=CardDetails(note="n")), ConflictError) == (
        "id: the card is deactivated and cannot change",
        "id",
    )
    assert store.events == []


def test_a_member_is_linked_to_a_card_without_one(store):
    store.add(_card())
    shown = _edit(store, CardEdit("7", member_id="M1"))
    assert (store.cards[7].member_id, shown.member_id) == ("M1", "M1")
    assert store.events == [(7, "MEMBER_LINKED", "M1")]
    assert store.stamps == [store.cards[7].updated_at]  # the edit's one moment


def test_linking_the_card_own_member_again_records_nothing(store):
    store.add(_card(member_id="M1"))
    _edit(store, CardEdit("7", member_id="M1"))
    assert store.events == []


def test_a_card_of_another_member_must_be_unlinked_first(store):
    store.add(_card(member_id="M1"))
    assert _edit_refusal(store, CardEdit("7", member_id="M2")) == (
        "member_id: the card belongs to another member; unlink it first",
        "member_id",
    )
    assert store.cards[7].member_id == "M1"


@pytest.mark.parametrize(
    ("code_type", "field"),
    [
        (CodeType.PHYSICAL, "revoke_physical_code"),
        (CodeType.EXTERNAL, "revoke_external_code"),
        (CodeType.PERSONAL, "revoke_personal_code"),
        (CodeType.SHORT_PERSONAL, "revoke_short_personal_code"),
    ],
)
def test_revoking_a_code_the_card_lacks_names_the_revoke_field(store, code_type, field):
    others = [
        (kind, f"{kind.value[:4]}00000001")
        for kind in (CodeType.PHYSICAL, CodeType.EXTERNAL)
        if kind != code_type
    ]
    store.add(_card(member_id="M1"), *others)
    assert _edit_refusal(store, CardEdit("7", revoke=frozenset({code_type}))) == (
        f"{field}: the card has no live {code_type.value} code",
        field,
    )


def test_revoked_codes_leave_the_card_in_type_order(store, reserved):
    store.add(_card(), (CodeType.PHYSICAL, "PHYS12345678"), (CodeType.EXTERNAL, "EXT00001"))

    shown = _edit(store, CardEdit("7", revoke=frozenset({CodeType.PHYSICAL, CodeType.EXTERNAL})))

    assert shown.codes == ()
    assert all(code.revoked_at is not None for code in store.codes)
    assert store.event_names() == [("CODE_REVOKED", "EXTERNAL"), ("CODE_REVOKED", "PHYSICAL")]


def test_unlinking_a_member_revokes_the_member_codes_only(store, reserved):
    store.add(_card(member_id="M1"), (CodeType.PHYSICAL, "PHYS12345678"), (CodeType.PERSONAL, "PERS87654321"))

    shown = _edit(store, CardEdit("7", unlink_member=True))

    assert (store.cards[7].member_id, shown.member_id) == (None, None)
    assert list(store.live(7)) == [CodeType.PHYSICAL]
    assert store.event_names() == [("MEMBER_UNLINKED", "M1"), ("CODE_REVOKED", "PERSONAL")]


def test_unlinking_adds_the_member_codes_to_those_asked_to_be_revoked(store, reserved):
    store.add(_card(member_id="M1"), (CodeType.PHYSICAL, "PHYS12345678"), (CodeType.PERSONAL, "PERS87654321"))

    _edit(store, CardEdit("7", revoke=frozenset({CodeType.PHYSICAL}), unlink_member=True))

    assert store.live(7) == {}
    assert store.event_names()[1:] == [("CODE_REVOKED", "PERSONAL"), ("CODE_REVOKED", "PHYSICAL")]


def test_unlinking_a_card_without_a_member_is_refused(store):
    store.add(_card())
    assert _edit_refusal(store, CardEdit("7", unlink_member=True)) == (
        "unlink_member: the card has no member",
        "unlink_member",
    )


def test_a_new_code_replaces_the_card_code_of_its_type(store, reserved):
    store.add(_card(), (CodeType.PHYSICAL, "OLD000000001"))

    shown = _edit(store, CardEdit("7", CodeChanges(physical_code="NEW000000001")))

    old, new = store.codes
    edited = store.cards[7].updated_at
    assert (old.revoked_at, new.revoked_at, new.giftcard_id, new.created_at) == (edited, None, 7, edited)
    assert _shown(shown) == [(CodeType.PHYSICAL, "NEW000000001", False)]
    assert store.event_names() == [("CODE_REVOKED", "PHYSICAL"), ("CODE_ADDED", "PHYSICAL")]
    assert reserved == [
        (
            VAULT.lookup_hashes("NEW000000001"),
            CodeType.PHYSICAL,
            "operator",
            "physical_code",
            edited,
            "default",
        )
    ]


def test_a_generated_personal_code_is_shown_in_full_once(store, reserved):
    store.add(_card(member_id="M1"))
    shown = _edit(store, CardEdit("7", CodeChanges(add_personal_code=True), member_id="M1"))
    ((code_type, code, masked),) = _shown(shown)
    assert (code_type, masked, len(code)) == (CodeType.PERSONAL, False, 20)
    # read again, the caller without ViewUnmasked sees it masked
    assert _shown(card_view(store.session, MASKING, OPERATOR, 7)) == [
        (CodeType.PERSONAL, "*" * 16 + code[-4:], True)
    ]


def test_the_card_own_code_given_again_keeps_its_row_with_a_new_pin_and_expiry(store, reserved):
    store.add(_card(), (CodeType.PHYSICAL, "PHYS12345678"))
    (code,) = store.codes
    code.pin_hash, code.pin_key_ids = "old", "p0"
    code.failed_pin_attempts, code.pin_locked_until = 4, LONG_AGO + timedelta(days=1)

    shown = _edit(store, CardEdit("7", CodeChanges("phys-1234-5678", "9876", date(2031, 1, 1))))

    assert len(store.codes) == 1 and code.revoked_at is None
    stored = PINS.hash(code.id or 0, "9876")
    assert (code.pin_hash, code.pin_key_ids) == (stored.value, stored.key_ids)
    assert (code.failed_pin_attempts, code.pin_locked_until, code.expires_on) == (0, None, date(2031, 1, 1))
    assert store.event_names() == [("CODE_UPDATED", "PHYSICAL")]
    assert shown.codes[0].expires_on == date(2031, 1, 1)


def test_the_card_own_code_given_again_without_a_pin_keeps_its_pin_and_expiry(store, reserved):
    store.add(_card(), (CodeType.PHYSICAL, "PHYS12345678"))
    (code,) = store.codes
    code.pin_hash, code.failed_pin_attempts, code.expires_on = "old", 2, date(2030, 1, 1)

    _edit(store, CardEdit("7", CodeChanges(physical_code="PHYS12345678")))

    assert (code.pin_hash, code.failed_pin_attempts, code.expires_on) == ("old", 2, date(2030, 1, 1))
    assert store.event_names() == [("CODE_UPDATED", "PHYSICAL")]
    assert reserved == []  # a kept code takes no stock


def test_unlocking_the_pin_ends_the_lockout(store):
    store.add(_card(), (CodeType.PHYSICAL, "PHYS12345678"))
    (code,) = store.codes
    code.pin_hash, code.failed_pin_attempts, code.pin_locked_until = "h", 5, LONG_AGO

    _edit(store, CardEdit("7", unlock_pin=True))

    assert (code.pin_hash, code.failed_pin_attempts, code.pin_locked_until) == ("h", 0, None)
    assert store.event_names() == [("PIN_UNLOCKED", "PHYSICAL")]


@pytest.mark.parametrize("codes", [(), ((CodeType.PHYSICAL, "PHYS12345678"),)], ids=["no code", "no PIN"])
def test_unlocking_needs_a_physical_code_with_a_pin(store, codes):
    store.add(_card(), *codes)
    assert _edit_refusal(store, CardEdit("7", unlock_pin=True)) == (
        "unlock_physical_pin: the card has no live PHYSICAL code with a PIN",
        "unlock_physical_pin",
    )


def test_changed_details_are_set_and_named_in_one_event(store):
    store.add(_card(note="old", source_id="keep"))

    shown = _edit(store, CardEdit("7", details=CardDetails(note="new", ref_no="R-1")))

    card = store.cards[7]
    assert (card.note, card.ref_no, card.source_id) == ("new", "R-1", "keep")
    assert (shown.note, shown.ref_no) == ("new", "R-1")
    assert store.event_names() == [("DETAILS_CHANGED", "note,ref_no")]
    assert card.updated_at > LONG_AGO


def test_an_expiry_before_the_card_own_start_is_refused(store):
    store.add(_card(usable_from=datetime(2030, 1, 1, tzinfo=UTC)))
    edit = CardEdit("7", details=CardDetails(expires_at=datetime(2030, 1, 1, tzinfo=UTC)))
    assert _edit_refusal(store, edit) == ("expires_at: must be later than usable_from", "expires_at")


def test_a_card_with_a_start_and_no_end_takes_other_details(store):
    store.add(_card(usable_from=datetime(2030, 1, 1, tzinfo=UTC)))
    _edit(store, CardEdit("7", details=CardDetails(note="n")))
    assert store.event_names() == [("DETAILS_CHANGED", "note")]


def test_an_edit_without_changed_details_still_marks_the_card_updated(store):
    store.add(_card())
    _edit(store, CardEdit("7", member_id="M1"))
    assert store.cards[7].updated_at > LONG_AGO
    assert store.event_names() == [("MEMBER_LINKED", "M1")]
