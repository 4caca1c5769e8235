"""The REST API's authorize → capture by AuthCode: an authorization answers an authCode once, and
giftcardTransCapture / giftcardTransCancel take it instead of the id, scoped as the id is; and who
made each transaction (createdBy)."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import text

from app.domain.codes import ALPHABET
from app.enums import CodeType
from tests.conftest import add_store, answered, fund, gql
from tests.graphql.conftest import POS
from tests.graphql.test_capture_and_cancel import _refusal

FIELDS = "id status amount balance availableBalance authCode"
TRANS = f"""mutation T($trans: GiftCardTransInput!, $key: String) {{
  giftcardTransAdd(trans: $trans, idempotencyKey: $key) {{ {FIELDS} }} }}"""
CAPTURE = f"""mutation C($id: ID, $authCode: String, $amount: String, $key: String) {{
  giftcardTransCapture(id: $id, authCode: $authCode, amount: $amount, idempotencyKey: $key) {{
    {FIELDS} }} }}"""
CANCEL = f"""mutation X($id: ID, $authCode: String, $key: String) {{
  giftcardTransCancel(id: $id, authCode: $authCode, idempotencyKey: $key) {{ {FIELDS} }} }}"""
HISTORY = """query H($id: ID!) {
  giftcardTransactions(filter: {giftcardId: $id}) { edges { node { id authCode } } }
  giftcard(id: $id) { results { transactions { id authCode } openAuthorizations { id authCode } } } }"""
CREATED_BY = """query H($id: ID!) { giftcardTransactions(filter: {giftcardId: $id}) {
  edges { node { transType status createdBy } } } }"""
CODE = "AUTHCODECARD01"
UNKNOWN = "ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZ"


@pytest.fixture
def card(seed, services):
    """$10.00 on a card with a PHYSICAL code, in the default store."""
    card_id = seed({CodeType.PHYSICAL: CODE})
    fund(services.engine, card_id, 1000)
    return card_id


def _hold(client, token, amount="-4.00", key=None, code=CODE):
    trans = {
        "transType": "USE",
        "amount": amount,
        "codeType": "PHYSICAL",
        "code": code,
        "authorizeOnly": True,
    }
    return answered(gql(client, TRANS, {"trans": trans, "key": key}, token=token), "giftcardTransAdd")


def _rows(services):
    with services.engine.connect() as connection:
        return connection.execute(
            text("SELECT id, status, amount FROM giftcard_transactions ORDER BY id")
        ).all()


def _balance(services, card_id):
    with services.engine.connect() as connection:
        return connection.execute(
            text("SELECT balance FROM giftcards WHERE id = :id"), {"id": card_id}
        ).scalar_one()


# --- the code an authorization answers ------------------------------------------------------------


def test_an_authorization_shows_its_code_once_and_history_never(client, admin, card, services):
    hold = _hold(client, admin)
    plain = answered(
        gql(
            client,
            TRANS,
            {"trans": {"transType": "USE", "amount": "-1.00", "giftcardId": str(card)}},
            token=admin,
        ),
        "giftcardTransAdd",
    )

    code = hold["authCode"]
    assert len(code) == 26 and set(code) <= set(ALPHABET)
    assert plain["authCode"] is None  # an immediate transaction has none
    assert _hold(client, admin)["authCode"] not in (None, code)  # each authorization its own
    body = gql(client, HISTORY, {"id": str(card)}, token=admin)
    assert "errors" not in body, body
    listed = [edge["node"] for edge in body["data"]["giftcardTransactions"]["edges"]]
    (found,) = body["data"]["giftcard"]["results"]
    for entries in (listed, found["transactions"], found["openAuthorizations"]):
        assert hold["id"] in [entry["id"] for entry in entries]
        assert {entry["authCode"] for entry in entries} == {None}


def test_the_database_keeps_only_the_codes_sha256(client, admin, card, services):
    hold = _hold(client, admin)
    code = hold["authCode"]

    with services.engine.connect() as connection:
        row = connection.execute(
            text("SELECT * FROM giftcard_transactions WHERE id = :id"), {"id": int(hold["id"])}
        ).one()
    values = dict(row._mapping)
    assert bytes(values.pop("auth_code_hash")) == hashlib.sha256(code.encode()).digest()
    shown = " ".join(str(value) for value in values.values()) + " ".join(
        bytes(value).hex() for value in values.values() if isinstance(value, bytes | memoryview)
    )
    assert code not in shown and code.lower() not in shown and code[:13] not in shown


def test_a_keyed_authorization_replays_the_same_code(client, pos, card, services):
    first = _hold(client, pos, key="auth-1")

    again = _hold(client, pos, key="auth-1")

    assert again == first and first["authCode"] is not None
    assert len(_rows(services)) == 2  # the funding and one hold


# --- capture and cancel by it ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "settled", "balance"), [(None, "-4.00", "6.00"), ("-2.50", "-2.50", "7.50")]
)
def test_a_capture_by_auth_code_settles_that_hold_alone(
    client, pos, card, services, amount, settled, balance
):
    hold, other = _hold(client, pos), _hold(client, pos, "-1.00")
    # the code as a person would type it back: lower case, in groups
    typed = "-".join(hold["authCode"][i : i + 4] for i in range(0, 26, 4)).lower()

    done = answered(
        gql(client, CAPTURE, {"authCode": typed, "amount": amount}, token=pos), "giftcardTransCapture"
    )

    assert (done["id"], done["status"], done["amount"], done["balance"]) == (
        hold["id"],
        "COMPLETED",
        settled,
        balance,
    )
    assert done["authCode"] is None
    assert dict((str(row[0]), row[1]) for row in _rows(services))[other["id"]] == "AUTHORIZED"
    assert _balance(services, card) == int(balance.replace(".", ""))


def test_a_cancel_by_auth_code_releases_that_hold_alone(client, pos, card, services):
    hold, other = _hold(client, pos), _hold(client, pos, "-1.00")

    done = answered(gql(client, CANCEL, {"authCode": hold["authCode"]}, token=pos), "giftcardTransCancel")

    assert (done["id"], done["status"], done["balance"], done["availableBalance"]) == (
        hold["id"],
        "CANCELLED",
        "10.00",
        "9.00",
    )
    assert dict((str(row[0]), row[1]) for row in _rows(services))[other["id"]] == "AUTHORIZED"


def test_capturing_twice_by_auth_code_is_a_conflict_as_by_id(client, pos, card, services):
    hold = _hold(client, pos)
    answered(gql(client, CAPTURE, {"authCode": hold["authCode"]}, token=pos), "giftcardTransCapture")

    again = gql(client, CAPTURE, {"authCode": hold["authCode"]}, token=pos)
    cancel = gql(client, CANCEL, {"authCode": hold["authCode"]}, token=pos)

    expected = ("CONFLICT", "authCode", "authCode: the transaction is COMPLETED, not AUTHORIZED")
    assert _refusal(again) == _refusal(cancel) == expected
    assert _balance(services, card) == 600


@pytest.mark.parametrize("operation", [CAPTURE, CANCEL], ids=["capture", "cancel"])
def test_exactly_one_of_id_and_auth_code(client, admin, card, services, operation):
    hold = _hold(client, admin)
    before = _rows(services)

    for variables in ({}, {"id": hold["id"], "authCode": hold["authCode"]}):
        body = gql(client, operation, variables, token=admin)
        assert _refusal(body) == ("BAD_USER_INPUT", "id", "id: give exactly one of id and authCode")

    assert _rows(services) == before


@pytest.mark.parametrize("operation", [CAPTURE, CANCEL], ids=["capture", "cancel"])
def test_a_malformed_or_unknown_auth_code(client, admin, card, services, operation):
    _hold(client, admin)
    before = _rows(services)

    malformed = gql(client, operation, {"authCode": "0000-1111"}, token=admin)
    unknown = gql(client, operation, {"authCode": UNKNOWN}, token=admin)

    assert _refusal(malformed) == (
        "BAD_USER_INPUT",
        "authCode",
        "authCode: an authorization code is 26 letters and digits (spaces and dashes are ignored)",
    )
    assert _refusal(unknown) == ("NOT_FOUND", "authCode", "authCode: no such transaction")
    assert _rows(services) == before


@pytest.mark.parametrize("operation", [CAPTURE, CANCEL], ids=["capture", "cancel"])
def test_another_stores_or_another_callers_auth_code_reads_as_unknown(
    client, mint, services, seed, operation
):
    # given a hold on a card of store north, made by a till without ListGiftCards
    add_store(services, "north")
    card_id = seed({CodeType.PHYSICAL: CODE}, store_id="north")
    fund(services.engine, card_id, 1000)
    hold = _hold(client, mint(permissions=POS, sub="till", stores=["north"]))
    before = _rows(services)

    # then an admin of another store, and another till of the same store, are told it does not exist
    for other in (
        mint(roles=["admin"], sub="office", stores=["default"]),
        mint(permissions=POS, sub="till-2", stores=["north"]),
    ):
        body = gql(client, operation, {"authCode": hold["authCode"]}, token=other)
        assert _refusal(body) == ("NOT_FOUND", "authCode", "authCode: no such transaction")
    assert _rows(services) == before
    # while an admin of its store may settle it
    office = mint(roles=["admin"], sub="office", stores=["north"])
    assert answered(
        gql(client, operation, {"authCode": hold["authCode"]}, token=office), operation_name(operation)
    )


def operation_name(operation: str) -> str:
    return "giftcardTransCapture" if "giftcardTransCapture" in operation else "giftcardTransCancel"


def test_keys_cover_which_form_was_used_and_replay_as_by_id(client, pos, card, services):
    hold = _hold(client, pos)
    done = answered(
        gql(client, CAPTURE, {"authCode": hold["authCode"], "key": "cap"}, token=pos), "giftcardTransCapture"
    )

    assert (
        answered(
            gql(client, CAPTURE, {"authCode": hold["authCode"], "key": "cap"}, token=pos),
            "giftcardTransCapture",
        )
        == done
    )
    by_id = gql(client, CAPTURE, {"id": hold["id"], "key": "cap"}, token=pos)
    assert _refusal(by_id)[:2] == ("CONFLICT", "idempotencyKey")
    with services.engine.connect() as connection:
        audited = connection.execute(
            text("SELECT action, outcome FROM audit_events WHERE subject = 'till' ORDER BY id")
        ).all()
    assert audited[-2:] == [("giftcardTransCapture", "OK"), ("giftcardTransCapture", "REPLAYED")]


# --- who made it ------------------------------------------------------------------------------------


def test_created_by_is_the_subject_of_every_kind_of_transaction(client, admin, pos, services):
    # given a card issued funded by the office, then a load, a captured and a cancelled hold by the till
    issued = gql(
        client,
        """mutation A($g: GiftCardAddInput!) { giftcardAdd(giftcard: $g) { id } }""",
        {"g": {"physicalCode": CODE, "initialValue": "10.00"}},
        token=admin,
    )
    card_id = answered(issued, "giftcardAdd")["id"]
    load = {"transType": "ADD", "amount": "1.00", "codeType": "PHYSICAL", "code": CODE}
    answered(gql(client, TRANS, {"trans": load}, token=pos), "giftcardTransAdd")
    captured, cancelled = _hold(client, pos), _hold(client, pos, "-1.00")
    answered(gql(client, CAPTURE, {"authCode": captured["authCode"]}, token=admin), "giftcardTransCapture")
    answered(gql(client, CANCEL, {"id": cancelled["id"]}, token=admin), "giftcardTransCancel")

    body = gql(client, CREATED_BY, {"id": card_id}, token=admin)

    assert "errors" not in body, body
    assert [tuple(edge["node"].values()) for edge in body["data"]["giftcardTransactions"]["edges"]] == [
        ("ADD", "COMPLETED", "office"),
        ("ADD", "COMPLETED", "till"),
        ("USE", "COMPLETED", "till"),  # settled by the office, made by the till
        ("USE", "CANCELLED", "till"),
    ]


def test_created_by_is_refused_alone_without_list_gift_cards(client, pos, card):
    body = gql(
        client,
        TRANS.replace("authCode", "authCode createdBy"),
        {"trans": {"transType": "USE", "amount": "-1.00", "codeType": "PHYSICAL", "code": CODE}},
        token=pos,
    )

    answer = body["data"]["giftcardTransAdd"]
    assert (answer["status"], answer["amount"], answer["balance"], answer["createdBy"]) == (
        "COMPLETED",
        "-1.00",
        "9.00",
        None,
    )
    (error,) = body["errors"]
    assert (error["path"], error["extensions"]["code"]) == (["giftcardTransAdd", "createdBy"], "FORBIDDEN")
