"""giftcardTransCapture and giftcardTransCancel in detail: what they answer, what they refuse and
how, what a retry with a key gets, and what the trail and the stored keys hold."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from app.domain import addressing
from app.domain import ledger as ledger_module
from app.domain.idempotency import encode
from app.enums import CodeType
from app.errors import UnauthenticatedError
from app.policy import ANONYMOUS
from tests.conftest import answered, fund, gql
from tests.graphql.conftest import POS

FIELDS = """id giftcardId transType status amount currency balance availableBalance balanceBefore
  balanceAfter authorizedAmount holdExpiresAt partial sourceId refNo note createdAt settledAt"""
TRANS = f"""mutation T($trans: GiftCardTransInput!, $key: String) {{
  giftcardTransAdd(trans: $trans, idempotencyKey: $key) {{ {FIELDS} }} }}"""
CAPTURE = f"""mutation C($id: ID!, $amount: String, $key: String) {{
  giftcardTransCapture(id: $id, amount: $amount, idempotencyKey: $key) {{ {FIELDS} }} }}"""
CANCEL = f"""mutation X($id: ID!, $key: String) {{
  giftcardTransCancel(id: $id, idempotencyKey: $key) {{ {FIELDS} }} }}"""
BLOCK = """mutation B($id: ID!) { giftcardBlock(id: $id) { id state } }"""
CODE = "CAPTURECODE1"


@pytest.fixture
def card(seed, services):
    """$10.00 on a card with a PHYSICAL code."""
    card_id = seed({CodeType.PHYSICAL: CODE})
    fund(services.engine, card_id, 1000)
    return card_id


def _refusal(body) -> tuple[str, str | None, str]:
    (error,) = body["errors"]
    return error["extensions"]["code"], error["extensions"].get("field"), error["message"]


def _hold(client, token, amount="-4.00", trans_type="USE", **extra):
    trans = {
        "transType": trans_type,
        "amount": amount,
        "codeType": "PHYSICAL",
        "code": CODE,
        "authorizeOnly": True,
        **extra,
    }
    return answered(gql(client, TRANS, {"trans": trans}, token=token), "giftcardTransAdd")


def _capture(client, token, hold_id, **variables):
    return gql(client, CAPTURE, {"id": hold_id, **variables}, token=token)


def _cancel(client, token, hold_id, **variables):
    return gql(client, CANCEL, {"id": hold_id, **variables}, token=token)


def _actions(services, subject):
    with services.engine.connect() as connection:
        return connection.execute(
            text("SELECT action, outcome, giftcard_id FROM audit_events WHERE subject = :s ORDER BY id"),
            {"s": subject},
        ).all()


# --- what a capture and a cancel answer ---------------------------------------------------------


def test_a_capture_answers_with_the_balances_around_it_and_the_other_holds(client, pos, card):
    # given two holds on a $10.00 card
    first, other = _hold(client, pos, "-4.00"), _hold(client, pos, "-1.50")

    # when the first is captured in part
    done = answered(_capture(client, pos, first["id"], amount="-3.00"), "giftcardTransCapture")

    # then the answer shows the capture, the balances around it, and what the other hold keeps
    assert (done["status"], done["amount"], done["authorizedAmount"], done["currency"]) == (
        "COMPLETED",
        "-3.00",
        "-4.00",
        "USD",
    )
    assert (done["balanceBefore"], done["balanceAfter"], done["balance"]) == ("10.00", "7.00", "7.00")
    assert done["availableBalance"] == "5.50"
    assert done["settledAt"] is not None and done["holdExpiresAt"] == first["holdExpiresAt"]
    assert other["status"] == "AUTHORIZED"


def test_a_cancel_answers_with_what_the_other_holds_keep(client, pos, card):
    first, _ = _hold(client, pos, "-4.00"), _hold(client, pos, "-1.50")

    done = answered(_cancel(client, pos, first["id"]), "giftcardTransCancel")

    assert (done["status"], done["currency"], done["balance"], done["availableBalance"]) == (
        "CANCELLED",
        "USD",
        "10.00",
        "8.50",
    )
    assert done["settledAt"] is not None


def test_a_credit_hold_is_captured_in_any_positive_part_but_not_zero(client, admin, card):
    hold = _hold(client, admin, "2.00", trans_type="ADD")

    assert _refusal(_capture(client, admin, hold["id"], amount="0")) == (
        "BAD_USER_INPUT",
        "amount",
        "amount: same sign as the authorization and no larger than it",
    )
    done = answered(_capture(client, admin, hold["id"], amount="0.01"), "giftcardTransCapture")
    assert (done["amount"], done["balance"]) == ("0.01", "10.01")


# --- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", [CAPTURE, CANCEL], ids=["capture", "cancel"])
def test_a_malformed_or_unknown_transaction_id_names_the_id(client, admin, card, operation):
    malformed = gql(client, operation, {"id": "first"}, token=admin)
    assert _refusal(malformed)[:2] == ("BAD_USER_INPUT", "id")
    assert _refusal(malformed)[2].startswith("id: ")

    unknown = gql(client, operation, {"id": "999999"}, token=admin)
    assert _refusal(unknown) == ("NOT_FOUND", "id", "id: no such transaction")


@pytest.mark.parametrize("operation", [CAPTURE, CANCEL], ids=["capture", "cancel"])
def test_another_callers_hold_is_not_found_by_a_caller_that_cannot_list_cards(
    client, mint, pos, card, operation
):
    hold = _hold(client, pos)
    other_till = mint(permissions=POS, sub="till-2")

    body = gql(client, operation, {"id": hold["id"]}, token=other_till)

    assert _refusal(body) == ("NOT_FOUND", "id", "id: no such transaction")


def test_capturing_on_a_card_blocked_since_is_refused(client, admin, pos, card, services):
    # given a hold, after which the card was blocked
    hold = _hold(client, pos)
    answered(gql(client, BLOCK, {"id": str(card)}, token=admin), "giftcardBlock")

    # then a trusted caller is told why, an untrusted one gets the uniform refusal; nothing moves
    assert _refusal(_capture(client, admin, hold["id"]))[:2] == ("CARD_NOT_USABLE", None)
    assert _refusal(_capture(client, admin, hold["id"]))[2] == "the card is blocked"
    code, _, message = _refusal(_capture(client, pos, hold["id"]))
    assert (code, message) == ("CARD_NOT_USABLE", addressing.UNUSABLE)
    with services.engine.connect() as connection:
        assert connection.execute(text("SELECT balance FROM giftcards")).scalar_one() == 1000


def test_capturing_on_a_card_expired_since_is_refused(client, admin, card, services):
    hold = _hold(client, admin)
    with services.engine.begin() as connection:
        connection.execute(
            text("UPDATE giftcards SET expires_at = :t"), {"t": datetime.now(UTC) - timedelta(seconds=1)}
        )

    assert _refusal(_capture(client, admin, hold["id"])) == ("CARD_NOT_USABLE", None, "the card has expired")


def test_a_hold_is_over_at_the_instant_it_expires(client, admin, card, services, monkeypatch):
    # given a hold whose expiry is the very instant the capture reads the clock
    hold = _hold(client, admin)
    instant = datetime.now(UTC) + timedelta(minutes=1)
    with services.engine.begin() as connection:
        connection.execute(
            text("UPDATE giftcard_transactions SET hold_expires_at = :t WHERE id = :id"),
            {"t": instant, "id": int(hold["id"])},
        )

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return instant

    monkeypatch.setattr(ledger_module, "datetime", Frozen)

    # then it can no longer be captured
    assert _refusal(_capture(client, admin, hold["id"])) == (
        "CONFLICT",
        "id",
        "id: the authorization has expired",
    )


def test_capture_and_cancel_need_a_token(services):
    ledger = services.ledger
    for call in (lambda: ledger.capture(ANONYMOUS, "1"), lambda: ledger.cancel(ANONYMOUS, "1")):
        with pytest.raises(UnauthenticatedError, match=r"^a bearer token is required$"):
            call()


def test_a_cancel_is_stamped_in_utc_whatever_the_local_zone(client, pos, card, monkeypatch):
    hold = _hold(client, pos)
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14
    time.tzset()
    try:
        before = datetime.now(UTC)
        done = answered(_cancel(client, pos, hold["id"]), "giftcardTransCancel")
    finally:
        monkeypatch.undo()
        time.tzset()
    assert before <= datetime.fromisoformat(done["settledAt"]) <= datetime.now(UTC)


# --- keyed retries, the trail, and the stored keys -----------------------------------------------


def test_a_keyed_capture_replays_every_field(client, pos, card):
    hold = _hold(client, pos)
    first = answered(_capture(client, pos, hold["id"], key="cap-1"), "giftcardTransCapture")

    again = answered(_capture(client, pos, hold["id"], key="cap-1"), "giftcardTransCapture")

    assert again == first
    assert first["holdExpiresAt"] is not None and first["settledAt"] is not None


def test_another_cancel_with_a_used_key_is_a_conflict(client, pos, card):
    first, second = _hold(client, pos, "-1.00"), _hold(client, pos, "-2.00")
    done = answered(_cancel(client, pos, first["id"], key="cancel-1"), "giftcardTransCancel")
    assert answered(_cancel(client, pos, first["id"], key="cancel-1"), "giftcardTransCancel") == done

    body = _cancel(client, pos, second["id"], key="cancel-1")

    assert _refusal(body) == (
        "CONFLICT",
        "idempotencyKey",
        "idempotencyKey: already used for a different request",
    )
    assert answered(_cancel(client, pos, second["id"]), "giftcardTransCancel")["status"] == "CANCELLED"


def test_captures_and_cancels_are_audited_under_their_own_names(client, pos, card, services):
    captured, cancelled = _hold(client, pos, "-1.00"), _hold(client, pos, "-2.00")
    answered(_capture(client, pos, captured["id"]), "giftcardTransCapture")
    answered(_cancel(client, pos, cancelled["id"]), "giftcardTransCancel")

    assert _actions(services, "till")[-2:] == [
        ("giftcardTransCapture", "OK", card),
        ("giftcardTransCancel", "OK", card),
    ]


def test_stored_request_digests_keep_their_form(client, pos, card, services):
    # a key stored before an upgrade must still replay after it: the digested document is fixed
    hold, other = _hold(client, pos, "-1.00"), _hold(client, pos, "-2.00")
    answered(_capture(client, pos, hold["id"], amount="-0.50", key="cap"), "giftcardTransCapture")
    answered(_cancel(client, pos, other["id"], key="can"), "giftcardTransCancel")
    with services.engine.connect() as connection:
        stored = dict(connection.execute(text("SELECT key, request_hash FROM idempotency_keys")).all())
    permissions = sorted(services.policy.expand(POS))

    def digest(operation, request):
        document = encode({"operation": operation, "permissions": permissions, "request": request})
        return services.vault.keyed_digests(b"idempotency", document)[0]

    assert bytes(stored["cap"]) == digest("giftcardTransCapture", {"id": int(hold["id"]), "amount": "-0.50"})
    assert bytes(stored["can"]) == digest("giftcardTransCancel", {"id": int(other["id"])})


def test_a_capture_key_is_not_a_cancel_key(client, pos, card):
    hold = _hold(client, pos)
    answered(_capture(client, pos, hold["id"], key="k"), "giftcardTransCapture")

    body = _cancel(client, pos, hold["id"], key="k")

    assert _refusal(body)[:2] == ("CONFLICT", "idempotencyKey")
