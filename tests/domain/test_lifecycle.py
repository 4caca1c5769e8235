"""Card states: the next state of each transition from each state, what is refused, and what is
recorded, with stand-ins for the mutation runner, the session and the card store (no database)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest

from app.config import Settings
from app.domain import cards as cards_module
from app.domain import states as states_module
from app.domain.codes import CodeVault
from app.domain.lifecycle import Lifecycle
from app.domain.masking import CodeMasking, ShownCard
from app.domain.mutations import Mutation
from app.entities import Card, ShownCode, StoredCode
from app.enums import CardState, CodeType, Operation
from app.errors import BadUserInputError, ConflictError, ForbiddenError, NotFoundError, UnauthenticatedError
from app.models import GiftCard
from app.policy import ANONYMOUS, Principal
from app.policy_file import load_policy
from tests.conftest import ROOT
from tests.domain.stand_ins import Runner

KEY = base64.b64encode(b"l" * 32).decode()
VAULT = CodeVault.from_settings(Settings(code_lookup_key=KEY, code_encryption_keys=f"k1:{KEY}"))
POLICY = load_policy(ROOT / "permissions.yaml")
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
OPERATOR = Principal(
    "operator", frozenset({"BlockGiftCard", "DeactivateGiftCard", "UsePhysicalGiftCardCodes"})
)
SEALED = VAULT.seal("PHYS12345678", CodeType.PHYSICAL)

BLOCK, UNBLOCK, DEACTIVATE = Operation.BLOCK_CARD, Operation.UNBLOCK_CARD, Operation.DEACTIVATE_CARD
PENDING, ACTIVE, BLOCKED, DEACTIVATED = CardState


class Session:
    """Stands in for the runner's session: only flushes are asked of it here."""

    def __init__(self) -> None:
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1


class CardStore:
    """Stands in for ``app.store.cards``: one card, its ledger as far as the states ask, its events.
    It is only ever asked within its one session (the runner's transaction)."""

    def __init__(self, card: GiftCard | None, *, funded: bool = False, open_holds: int = 0) -> None:
        self.session = Session()
        self.card, self.open_holds = card, open_holds
        self.funded = {card.id} if card is not None and funded else set()
        self.events: list[tuple[int, str, str | None, str | None]] = []
        self.stamps: list[datetime] = []  # when each event and cancellation happened
        self.cancelled: list[int] = []
        self.locked_in: list[tuple[str, ...] | None] = []  # the stores each lock was asked for

    def card_for_update(self, session, card_id, stores):
        assert session is self.session
        self.locked_in.append(stores)
        card = self.card
        found = card is not None and card.id == card_id and (stores is None or card.store_id in stores)
        return card if found else None

    def has_completed_entries(self, session, card_id):
        assert session is self.session
        return card_id in self.funded

    def add_event(self, session, card, event, actor, now, detail=None):
        assert session is self.session
        assert card is self.card  # the card itself: its event goes to its store
        assert card is not None and card.id is not None
        self.events.append((card.id, event, actor, detail))
        self.stamps.append(now)

    def cancel_open_holds(self, session, card_id, now):
        assert session is self.session
        self.cancelled.append(card_id)
        self.stamps.append(now)
        return self.open_holds

    def card_rows(self, session, card_id):
        assert session is self.session
        card = self.card
        assert card is not None and card.id == card_id
        row = (card.id, card.member_id, card.currency, CardState(card.state), card.balance)
        code = StoredCode(70, CodeType.PHYSICAL, SEALED.ciphertext, SEALED.key_id, SEALED.last4, None)
        values: tuple[Any, ...] = (
            *row,
            card.created_at,
            card.updated_at,
            None,
            None,
            None,
            None,
            None,
            None,
            (code,),
        )
        return [Card(*values)]


def _card(state: CardState, card_id: int = 7, store_id: str = "default") -> GiftCard:
    return GiftCard(
        id=card_id,
        store_id=store_id,
        currency="EUR",
        state=state.value,
        balance=0,
        created_at=LONG_AGO,
        updated_at=LONG_AGO,
    )


@pytest.fixture
def world(monkeypatch):
    """Builds a Lifecycle over a stand-in store holding one card."""

    def build(card: GiftCard | None, **ledger) -> tuple[Lifecycle, Runner, CardStore]:
        store = CardStore(card, **ledger)
        monkeypatch.setattr(states_module, "store", store)
        monkeypatch.setattr(cards_module, "store", store)  # lock_card and card_view read through it
        runner = Runner(store)
        return Lifecycle(runner, CodeMasking(VAULT, POLICY)), runner, store  # type: ignore[arg-type]

    return build


# --- the next state ----------------------------------------------------------------------------

TRANSITIONS = [
    (BLOCK, PENDING, False, BLOCKED),
    (BLOCK, ACTIVE, True, BLOCKED),
    (UNBLOCK, BLOCKED, True, ACTIVE),  # it was funded once
    (UNBLOCK, BLOCKED, False, PENDING),  # never funded
    (DEACTIVATE, PENDING, False, DEACTIVATED),
    (DEACTIVATE, ACTIVE, True, DEACTIVATED),
    (DEACTIVATE, BLOCKED, True, DEACTIVATED),
]
EVENTS = {BLOCK: "BLOCKED", UNBLOCK: "UNBLOCKED", DEACTIVATE: "DEACTIVATED"}


@pytest.mark.parametrize(("operation", "before", "funded", "after"), TRANSITIONS)
def test_a_transition_moves_the_card_and_records_one_event(world, operation, before, funded, after):
    lifecycle, runner, store = world(_card(before), funded=funded)

    shown = lifecycle.change(OPERATOR, operation, "7", "lost at the till", "key-1")

    assert shown.state is after and store.card is not None and store.card.state == after.value
    assert store.events == [(7, EVENTS[operation], "operator", "lost at the till")]
    assert store.card.updated_at > LONG_AGO
    assert store.stamps[0] == store.card.updated_at  # the event has the change's time
    assert runner.session.flushes == 1


NO_CHANGE = [
    (BLOCK, BLOCKED),
    (UNBLOCK, PENDING),
    (UNBLOCK, ACTIVE),
    (DEACTIVATE, DEACTIVATED),
]


@pytest.mark.parametrize(("operation", "state"), NO_CHANGE)
def test_repeating_a_transition_changes_and_records_nothing(world, operation, state):
    lifecycle, runner, store = world(_card(state), funded=True, open_holds=3)

    shown = lifecycle.change(OPERATOR, operation, "7", None, None)

    assert shown.state is state and store.card is not None and store.card.state == state.value
    assert store.card.updated_at == LONG_AGO
    assert (store.events, store.cancelled, runner.session.flushes) == ([], [], 0)


@pytest.mark.parametrize(
    ("operation", "message"),
    [
        (BLOCK, "id: the card is deactivated and cannot be blocked"),
        (UNBLOCK, "id: the card is deactivated and cannot be unblocked"),
    ],
)
def test_a_deactivated_card_cannot_be_blocked_or_unblocked(world, operation, message):
    lifecycle, _, store = world(_card(DEACTIVATED))

    with pytest.raises(ConflictError) as caught:
        lifecycle.change(OPERATOR, operation, "7", None, None)

    assert (caught.value.message, caught.value.field) == (message, "id")
    assert store.card is not None and store.card.state == DEACTIVATED.value and store.events == []


# --- deactivation and holds --------------------------------------------------------------------


def test_deactivation_cancels_the_open_holds_and_records_how_many(world):
    lifecycle, _, store = world(_card(ACTIVE), open_holds=2)

    lifecycle.change(OPERATOR, DEACTIVATE, "7", "closed", None)

    assert store.cancelled == [7]
    assert store.events == [(7, "DEACTIVATED", "operator", "closed"), (7, "HOLDS_CANCELLED", "operator", "2")]
    assert store.card is not None and store.stamps == [store.card.updated_at] * 3  # one moment for all


def test_deactivation_without_open_holds_records_no_cancellation(world):
    lifecycle, _, store = world(_card(ACTIVE), open_holds=0)

    lifecycle.change(OPERATOR, DEACTIVATE, "7", None, None)

    assert store.cancelled == [7]
    assert store.events == [(7, "DEACTIVATED", "operator", None)]


@pytest.mark.parametrize(("operation", "state"), [(BLOCK, ACTIVE), (UNBLOCK, BLOCKED)])
def test_blocking_and_unblocking_leave_holds_alone(world, operation, state):
    lifecycle, _, store = world(_card(state), funded=True, open_holds=2)

    lifecycle.change(OPERATOR, operation, "7", None, None)

    assert store.cancelled == []
    assert [event for _, event, _, _ in store.events] == [EVENTS[operation]]


# --- what the runner is given, and what is refused before it runs ------------------------------


def test_the_runner_is_given_the_operation_its_request_and_the_key(world):
    lifecycle, runner, _ = world(_card(ACTIVE))

    lifecycle.change(OPERATOR, BLOCK, "7", "why", "key-9")

    assert runner.mutations == [Mutation(BLOCK, {"id": "7", "reason": "why"}, ShownCard, "key-9")]
    assert runner.principals == [OPERATOR]


def test_the_answer_is_the_card_as_the_caller_may_see_it(world):
    lifecycle, _, _ = world(_card(ACTIVE))

    shown = lifecycle.change(OPERATOR, BLOCK, "7", None, None)

    assert (shown.id, shown.currency, shown.state) == (7, "EUR", BLOCKED)
    assert shown.codes == (ShownCode(70, CodeType.PHYSICAL, "PHYS12345678", None, False),)
    # without the type's Use… permission the code is left out
    lifecycle, _, _ = world(_card(ACTIVE))
    blocker = Principal("operator", frozenset({"BlockGiftCard"}))
    assert lifecycle.change(blocker, BLOCK, "7", None, None).codes == ()


def test_an_unknown_card_is_not_found(world):
    lifecycle, _, _ = world(_card(ACTIVE, card_id=8))

    with pytest.raises(NotFoundError) as caught:
        lifecycle.change(OPERATOR, BLOCK, "7", None, None)

    assert (caught.value.message, caught.value.field) == ("id: no gift card with this id", "id")


def test_a_card_outside_the_callers_stores_is_not_found_and_left_alone(world):
    lifecycle, _, store = world(_card(ACTIVE, store_id="north"))

    with pytest.raises(NotFoundError) as caught:
        lifecycle.change(OPERATOR, DEACTIVATE, "7", None, None)

    assert (caught.value.message, caught.value.field) == ("id: no gift card with this id", "id")
    assert store.locked_in == [("default",)]  # the caller's stores, not every store
    assert store.card is not None and store.card.state == ACTIVE.value
    assert (store.events, store.cancelled) == ([], [])


def test_a_caller_of_the_cards_store_changes_it(world):
    lifecycle, _, store = world(_card(ACTIVE, store_id="north"))
    north = Principal("operator", OPERATOR.permissions, stores=frozenset({"north", "east"}))

    assert lifecycle.change(north, BLOCK, "7", None, None).state is BLOCKED
    assert store.locked_in == [("east", "north")]


@pytest.mark.parametrize(
    ("operation", "granted", "lacking"),
    [
        (BLOCK, {"DeactivateGiftCard"}, "BlockGiftCard"),
        (UNBLOCK, {"DeactivateGiftCard"}, "BlockGiftCard"),
        (DEACTIVATE, {"BlockGiftCard"}, "DeactivateGiftCard"),
    ],
)
def test_each_transition_needs_its_permission(world, operation, granted, lacking):
    lifecycle, runner, _ = world(_card(ACTIVE))

    with pytest.raises(ForbiddenError) as caught:
        lifecycle.change(Principal("clerk", frozenset(granted)), operation, "7", None, None)

    assert caught.value.message == f"the token lacks the {lacking} permission"
    assert runner.mutations == []


def test_a_caller_without_a_token_is_unauthenticated(world):
    lifecycle, runner, _ = world(_card(ACTIVE))

    with pytest.raises(UnauthenticatedError):
        lifecycle.change(ANONYMOUS, DEACTIVATE, "7", None, None)

    assert runner.mutations == []


@pytest.mark.parametrize(
    ("card_id", "reason", "message", "field"),
    [
        ("0", None, "id: a gift card id is an integer from 1 to 9223372036854775807", "id"),
        ("x7", None, "id: a gift card id is an integer from 1 to 9223372036854775807", "id"),
        ("7", "r" * 256, "reason: at most 255 characters", "reason"),
        ("7", "two\nlines", "reason: control characters are not allowed", "reason"),
    ],
)
def test_a_malformed_id_or_reason_is_refused_before_the_runner(world, card_id, reason, message, field):
    lifecycle, runner, _ = world(_card(ACTIVE))

    with pytest.raises(BadUserInputError) as caught:
        lifecycle.change(OPERATOR, BLOCK, card_id, reason, None)

    assert (caught.value.message, caught.value.field) == (message, field)
    assert runner.mutations == []


def test_a_reason_of_255_characters_is_kept(world):
    lifecycle, _, store = world(_card(ACTIVE))

    lifecycle.change(OPERATOR, BLOCK, "7", "r" * 255, None)

    assert store.events == [(7, "BLOCKED", "operator", "r" * 255)]
