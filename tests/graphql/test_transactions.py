"""giftcardTransAdd / Capture / Cancel: the card rules, holds, refusals and the ledger."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import text

from app.enums import CodeType
from tests.conftest import answered, error_codes, fund, gql

TRANS = """mutation T($trans: GiftCardTransInput!) { giftcardTransAdd(trans: $trans) {
  id giftcardId transType amount status balance availableBalance balanceBefore balanceAfter partial } }"""
CAPTURE = """mutation C($id: ID!, $amount: String) { giftcardTransCapture(id: $id, amount: $amount) {
  id status amount balance availableBalance } }"""
CANCEL = """mutation X($id: ID!) { giftcardTransCancel(id: $id) { id status balance availableBalance } }"""
CODE = "LEDGERPHYS01"


@pytest.fixture
def pos(mint):
    permissions = ["FindGiftCardByCode", "UsePhysicalGiftCardCodes", "GiftCardTransUse", "GiftCardTransAdd"]
    return mint(permissions=permissions, sub="pos")  # as the pos role


@pytest.fixture
def ten_dollars(seed, services):
    """A card holding $10.00, funded through the ledger (so `ledger verify` agrees)."""
    card_id = seed({CodeType.PHYSICAL: CODE})
    fund(services.engine, card_id, 1000)
    return card_id


def _trans(client, token, **trans):
    base = {"codeType": "PHYSICAL", "code": CODE}
    return gql(client, TRANS, {"trans": {**base, **trans}}, token=token)


def _ok(body, name="giftcardTransAdd"):
    return answered(body, name)


def _verify(services):
    from datetime import UTC, datetime

    from app.store import ledger

    return ledger.verify(services.engine, datetime.now(UTC))[1]


# --- Fusion's table: a $10 card and a $1 transaction --------------------------------------------


def test_authorize_debit_then_capture(client, pos, ten_dollars, services):
    held = _ok(_trans(client, pos, transType="USE", amount="-1.00", authorizeOnly=True))
    assert (held["status"], held["availableBalance"], held["balance"]) == ("AUTHORIZED", "9.00", "10.00")
    done = _ok(gql(client, CAPTURE, {"id": held["id"]}, token=pos), "giftcardTransCapture")
    assert (done["status"], done["availableBalance"], done["balance"]) == ("COMPLETED", "9.00", "9.00")
    assert _verify(services) == []


def test_authorize_debit_then_cancel(client, pos, ten_dollars, services):
    held = _ok(_trans(client, pos, transType="USE", amount="-1.00", authorizeOnly=True))
    done = _ok(gql(client, CANCEL, {"id": held["id"]}, token=pos), "giftcardTransCancel")
    assert (done["status"], done["availableBalance"], done["balance"]) == ("CANCELLED", "10.00", "10.00")
    assert _verify(services) == []


def test_authorize_credit_then_capture(client, pos, ten_dollars, services):
    held = _ok(_trans(client, pos, transType="ADD", amount="1.00", authorizeOnly=True))
    assert (held["availableBalance"], held["balance"]) == ("10.00", "10.00")
    done = _ok(gql(client, CAPTURE, {"id": held["id"]}, token=pos), "giftcardTransCapture")
    assert (done["availableBalance"], done["balance"]) == ("11.00", "11.00")
    assert _verify(services) == []


def test_smaller_capture_releases_the_rest(client, pos, ten_dollars):
    held = _ok(_trans(client, pos, transType="USE", amount="-4.00", authorizeOnly=True))
    done = _ok(gql(client, CAPTURE, {"id": held["id"], "amount": "-2.50"}, token=pos), "giftcardTransCapture")
    assert (done["amount"], done["balance"], done["availableBalance"]) == ("-2.50", "7.50", "7.50")


@pytest.mark.parametrize("amount", ["-4.01", "2.00", "0", "-0.001"])
def test_capture_amount_must_fit_the_authorization(client, pos, ten_dollars, amount):
    held = _ok(_trans(client, pos, transType="USE", amount="-4.00", authorizeOnly=True))
    body = gql(client, CAPTURE, {"id": held["id"], "amount": amount}, token=pos)
    assert error_codes(body) == ["BAD_USER_INPUT"]


def test_only_authorized_transactions_can_be_captured_or_cancelled(client, pos, ten_dollars):
    done = _ok(_trans(client, pos, transType="USE", amount="-1.00"))
    assert error_codes(gql(client, CAPTURE, {"id": done["id"]}, token=pos)) == ["CONFLICT"]
    assert error_codes(gql(client, CANCEL, {"id": done["id"]}, token=pos)) == ["CONFLICT"]
    held = _ok(_trans(client, pos, transType="USE", amount="-1.00", authorizeOnly=True))
    _ok(gql(client, CANCEL, {"id": held["id"]}, token=pos), "giftcardTransCancel")
    assert error_codes(gql(client, CAPTURE, {"id": held["id"]}, token=pos)) == ["CONFLICT"]


def test_expired_holds_free_the_funds_and_cannot_be_captured(client, pos, ten_dollars, services):
    held = _ok(_trans(client, pos, transType="USE", amount="-9.00", authorizeOnly=True))
    with services.engine.begin() as connection:
        connection.execute(
            text("UPDATE giftcard_transactions SET hold_expires_at = :t WHERE id = :id"),
            {"t": "2000-01-01 00:00:00", "id": int(held["id"])},
        )
    assert error_codes(gql(client, CAPTURE, {"id": held["id"]}, token=pos)) == ["CONFLICT"]
    spent = _ok(_trans(client, pos, transType="USE", amount="-10.00"))
    assert spent["balance"] == "0.00"


# --- immediate transactions and card rules ------------------------------------------------------


def test_design_example_use_with_pin(client, mint, seed, services):
    card_id = seed({CodeType.PHYSICAL: "GC49288330"}, pin="1234")
    admin = mint(roles=["admin"])
    _ok(
        gql(
            client,
            TRANS,
            {"trans": {"giftcardId": str(card_id), "transType": "ADD", "amount": "20.00"}},
            token=admin,
        )
    )
    body = gql(
        client,
        """mutation { giftcardTransAdd(trans: {codeType: PHYSICAL, code: "GC49288330",
      pin: "1234", transType: USE, amount: "-6.49", sourceId: "Api-test", refNo: "TRANS001"}) {
      id balance giftcardId } }""",
        token=admin,
    )
    assert _ok(body)["balance"] == "13.51" and _ok(body)["giftcardId"] == str(card_id)
    assert _verify(services) == []


def test_first_completed_add_activates_a_pending_card(client, mint, seed):
    card_id = seed({CodeType.PHYSICAL: "PENDPHYS0001"})
    admin = mint(roles=["admin"])
    state = "query($id: ID!) { giftcard(id: $id) { results { state } } }"
    held = _ok(
        gql(
            client,
            TRANS,
            {"trans": {"giftcardId": str(card_id), "transType": "ADD", "amount": "5", "authorizeOnly": True}},
            token=admin,
        )
    )
    assert (
        gql(client, state, {"id": str(card_id)}, token=admin)["data"]["giftcard"]["results"][0]["state"]
        == "PENDING"
    )
    _ok(gql(client, CAPTURE, {"id": held["id"]}, token=admin), "giftcardTransCapture")
    assert (
        gql(client, state, {"id": str(card_id)}, token=admin)["data"]["giftcard"]["results"][0]["state"]
        == "ACTIVE"
    )


def test_overdraft_is_refused_unless_partial_is_asked_for(client, pos, ten_dollars, services):
    body = _trans(client, pos, transType="USE", amount="-10.01")
    assert error_codes(body) == ["INSUFFICIENT_FUNDS"]
    part = _ok(_trans(client, pos, transType="USE", amount="-25.00", allowPartial=True))
    assert (part["amount"], part["balance"], part["partial"]) == ("-10.00", "0.00", True)
    assert error_codes(_trans(client, pos, transType="USE", amount="-1.00", allowPartial=True)) == [
        "INSUFFICIENT_FUNDS"
    ]
    assert _verify(services) == []


def test_holds_count_against_the_available_balance(client, pos, ten_dollars):
    _ok(_trans(client, pos, transType="USE", amount="-8.00", authorizeOnly=True))
    assert error_codes(_trans(client, pos, transType="USE", amount="-2.01")) == ["INSUFFICIENT_FUNDS"]
    assert _ok(_trans(client, pos, transType="USE", amount="-2.00"))["availableBalance"] == "0.00"


@pytest.mark.parametrize(
    ("trans", "field"),
    [
        ({"transType": "USE", "amount": "1.00"}, "amount"),
        ({"transType": "ADD", "amount": "-1.00"}, "amount"),
        ({"transType": "USE", "amount": "0.00"}, "amount"),
        ({"transType": "USE", "amount": "-1.005"}, "amount"),
        ({"transType": "USE", "amount": "abc"}, "amount"),
        ({"transType": "USE", "amount": "-1", "giftcardId": "1"}, "trans"),
        ({"transType": "USE", "amount": "-1", "code": None}, "code"),
        ({"transType": "USE", "amount": "-1", "code": "bad!"}, "code"),
        ({"transType": "USE", "amount": "-1", "sourceId": "x" * 129}, "sourceId"),
    ],
)
def test_bad_input(client, pos, ten_dollars, trans, field):
    body = _trans(client, pos, **trans)
    assert error_codes(body) == ["BAD_USER_INPUT"] and body["errors"][0]["extensions"]["field"] == field


@pytest.mark.parametrize(
    ("trans_type", "amount", "needed"),
    [
        ("ADD", "1", "GiftCardTransAdd"),
        ("USE", "-1", "GiftCardTransUse"),
        ("ADJUST", "-1", "GiftCardTransAdjust"),
        ("EXTERNAL", "1", "GiftCardTransExternal"),
        ("IMPORT", "1", "GiftCardTransImport"),
    ],
)
def test_each_type_needs_its_permission(client, mint, ten_dollars, trans_type, amount, needed):
    others = [
        p
        for p in (
            "GiftCardTransAdd",
            "GiftCardTransUse",
            "GiftCardTransAdjust",
            "GiftCardTransExternal",
            "GiftCardTransImport",
        )
        if p != needed
    ]
    without = mint(permissions=["UsePhysicalGiftCardCodes", *others])
    body = _trans(client, without, transType=trans_type, amount=amount)
    assert error_codes(body) == ["FORBIDDEN"] and needed in body["errors"][0]["message"]
    with_it = mint(permissions=["UsePhysicalGiftCardCodes", needed])
    _ok(_trans(client, with_it, transType=trans_type, amount=amount))


def test_the_code_types_use_permission_and_list_for_ids_are_needed(client, mint, ten_dollars):
    no_use = mint(permissions=["GiftCardTransUse"])
    assert error_codes(_trans(client, no_use, transType="USE", amount="-1")) == ["FORBIDDEN"]
    body = gql(
        client,
        TRANS,
        {"trans": {"giftcardId": str(ten_dollars), "transType": "USE", "amount": "-1"}},
        token=mint(permissions=["GiftCardTransUse", "UsePhysicalGiftCardCodes"]),
    )
    assert error_codes(body) == ["FORBIDDEN"]
    assert error_codes(_trans(client, None, transType="USE", amount="-1")) == ["UNAUTHENTICATED"]


def _untrusted_refusals(client, pos, seed, services):
    """The bodies an untrusted caller gets for four different reasons."""
    seed({CodeType.PHYSICAL: "PINPHYS00001"}, pin="4321", balance=100)
    seed(
        {CodeType.PHYSICAL: "EXPIREDPHY01"},
        balance=100,
        expires={CodeType.PHYSICAL: date.today() - timedelta(days=1)},
    )
    blocked = seed({CodeType.PHYSICAL: "BLOCKEDPHY01"}, balance=100)
    with services.engine.begin() as connection:
        connection.execute(text("UPDATE giftcards SET state = 'BLOCKED' WHERE id = :id"), {"id": blocked})
    cases = {
        "unknown": ("NOSUCHPHYS01", None),
        "wrong-pin": ("PINPHYS00001", "9999"),
        "expired": ("EXPIREDPHY01", None),
        "blocked": ("BLOCKEDPHY01", None),
    }
    return {
        name: _trans(client, pos, code=code, pin=pin, transType="USE", amount="-0.10")
        for name, (code, pin) in cases.items()
    }


def test_untrusted_callers_get_one_answer_for_every_unusable_card(client, pos, seed, services):
    bodies = _untrusted_refusals(client, pos, seed, services)
    for body in bodies.values():
        assert error_codes(body) == ["CARD_NOT_USABLE"]
        for error in body["errors"]:
            error.pop("locations", None)
    assert len({str(body) for body in bodies.values()}) == 1


def test_trusted_callers_are_told_why(client, mint, seed, services):
    admin = mint(roles=["admin"], sub="pos")
    codes = {
        name: error_codes(body) for name, body in _untrusted_refusals(client, admin, seed, services).items()
    }
    assert codes == {
        "unknown": ["NOT_FOUND"],
        "wrong-pin": ["CARD_NOT_USABLE"],
        "expired": ["CARD_NOT_USABLE"],
        "blocked": ["CARD_NOT_USABLE"],
    }


def test_a_pin_is_needed_when_the_code_has_one(client, pos, seed):
    seed({CodeType.PHYSICAL: "NEEDPIN00001"}, pin="4321", balance=100)
    assert error_codes(_trans(client, pos, code="NEEDPIN00001", transType="USE", amount="-0.10")) == [
        "CARD_NOT_USABLE"
    ]
    ok = _ok(_trans(client, pos, code="NEEDPIN00001", pin="4321", transType="USE", amount="-0.10"))
    assert ok["balance"] == "0.90"


def test_transactions_of_other_clients_are_not_found(client, mint, pos, ten_dollars):
    held = _ok(_trans(client, pos, transType="USE", amount="-1.00", authorizeOnly=True))
    other = mint(permissions=["UsePhysicalGiftCardCodes", "GiftCardTransUse"], sub="other-pos")
    assert error_codes(gql(client, CAPTURE, {"id": held["id"]}, token=other)) == ["NOT_FOUND"]
    assert error_codes(gql(client, CANCEL, {"id": held["id"]}, token=other)) == ["NOT_FOUND"]


def test_idempotent_debit_is_made_once(client, pos, ten_dollars, services):
    variables = {"trans": {"codeType": "PHYSICAL", "code": CODE, "transType": "USE", "amount": "-3.00"}}
    keyed = TRANS.replace(
        "($trans: GiftCardTransInput!)", "($trans: GiftCardTransInput!, $key: String)"
    ).replace("giftcardTransAdd(trans: $trans)", "giftcardTransAdd(trans: $trans, idempotencyKey: $key)")
    first = gql(client, keyed, {**variables, "key": "sale-1"}, token=pos)
    assert gql(client, keyed, {**variables, "key": "sale-1"}, token=pos) == first
    assert first["data"]["giftcardTransAdd"]["balance"] == "7.00"
    assert _verify(services) == []


def test_ledger_verify_finds_a_tampered_balance(ten_dollars, services, monkeypatch, capsys, tmp_path):
    from app import cli

    monkeypatch.setenv("GIFTCARDS_DATABASE_URL", services.settings.database_url)
    monkeypatch.setenv("GIFTCARDS_STATE_DIR", str(tmp_path))
    assert cli.main(["ledger", "verify"]) == 0
    with services.engine.begin() as connection:
        connection.execute(text("UPDATE giftcards SET balance = 999 WHERE id = :id"), {"id": ten_dollars})
    assert cli.main(["ledger", "verify"]) == 1
    assert f"card {ten_dollars}: stored balance 999, ledger says 1000" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("column", "value"),
    [("usable_from", "2999-01-01 00:00:00"), ("expires_at", "2000-01-01 00:00:00"), ("state", "DEACTIVATED")],
)
def test_cards_outside_their_window_or_deactivated_take_nothing(
    client, mint, ten_dollars, services, column, value
):
    with services.engine.begin() as connection:
        connection.execute(
            text(f"UPDATE giftcards SET {column} = :v WHERE id = :id"), {"v": value, "id": ten_dollars}
        )
    admin = mint(roles=["admin"])
    body = _trans(client, admin, transType="ADD", amount="1.00")
    assert error_codes(body) == ["CARD_NOT_USABLE"]
    assert _verify(services) == []


def test_a_revoked_code_takes_nothing(client, mint, ten_dollars):
    admin = mint(roles=["admin"])
    gql(
        client,
        "mutation($id: ID!) { giftcardEdit(giftcard: {id: $id, revokePhysicalCode: true}) { id } }",
        {"id": str(ten_dollars)},
        token=admin,
    )
    body = _trans(client, admin, transType="USE", amount="-1.00")
    # a trusted caller is told the code was revoked (the contract's CARD_NOT_USABLE) …
    assert error_codes(body) == ["CARD_NOT_USABLE"]
    assert (body["errors"][0]["extensions"]["field"], body["errors"][0]["message"]) == (
        "code",
        "code: the code was revoked",
    )
    # … an untrusted one gets the uniform refusal, as for a code that never existed
    till = mint(permissions=["UsePhysicalGiftCardCodes", "GiftCardTransUse"])
    revoked = _trans(client, till, transType="USE", amount="-1.00")
    unknown = _trans(client, till, transType="USE", amount="-1.00", code="NEVERISSUED01")
    assert revoked == unknown and error_codes(revoked) == ["CARD_NOT_USABLE"]
    # a code that never existed is still NOT_FOUND for the trusted caller
    assert error_codes(_trans(client, admin, transType="USE", amount="-1.00", code="NEVERISSUED01")) == [
        "NOT_FOUND"
    ]
    found = gql(
        client,
        "query($id: ID!) { giftcard(id: $id) { results { balance } } }",
        {"id": str(ten_dollars)},
        token=admin,
    )
    assert _ok(found, "giftcard")["results"][0]["balance"] == "10.00"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("note", "nul \x00 inside"),
        ("sourceId", "tab\there"),
        ("refNo", "r" * 129),
        ("note", "n" * 1001),
    ],
)
def test_operator_text_on_a_transaction_is_checked(client, pos, ten_dollars, field, value):
    body = _trans(client, pos, transType="USE", amount="-1.00", **{field: value})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == field
