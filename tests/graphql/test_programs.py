"""Programs through the API: giftcardProgramAdd, giftcardProgramEdit and giftcardPrograms, behind
ManagePrograms and within the token's stores (another store's program reads as a missing one)."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from sqlalchemy import text

from app.auth.tokens import issue_token
from app.errors import ConflictError
from tests.conftest import error_codes, gql
from tests.test_concurrency import in_parallel

ADD = """mutation Add($program: GiftCardProgramInput!, $storeId: ID, $key: String) {
  giftcardProgramAdd(program: $program, storeId: $storeId, idempotencyKey: $key) {
    id storeId code name currency codeFormat { prefix length checkCharacter entropyBits }
    denominations minValue maxValue valueChangesAllowed expiry { kind days } maxBalance maxDailyLoad
    isDefault } }"""
EDIT = """mutation Edit($id: ID!, $program: GiftCardProgramEditInput!) {
  giftcardProgramEdit(id: $id, program: $program) {
    id code name currency codeFormat { prefix length } denominations maxBalance expiry { kind days }
    isDefault } }"""
LIST = (
    """query Programs($storeId: ID) { giftcardPrograms(storeId: $storeId) { id storeId code isDefault } }"""
)
FORMAT = {"prefix": "GC", "length": 16}
PROGRAM = {"code": "GC", "name": "Gift card", "currency": "USD", "codeFormat": FORMAT}


def _store(services, store_id: str) -> None:
    # The PostgreSQL database outlives a test, and stores are never removed.
    with contextlib.suppress(ConflictError):
        services.stores.add(store_id, None)


@pytest.fixture
def token(settings, services):
    """``token(stores=[...], permissions=[...])``: ManagePrograms by default, on the default store."""

    def _token(stores: list[str] | None = None, permissions: tuple[str, ...] = ("ManagePrograms",)) -> str:
        for store_id in stores or ():
            _store(services, store_id)
        return issue_token(settings, services.policy, "manager", permissions=permissions, stores=stores)

    return _token


def _add(client, token: str, store_id: str | None = None, key: str | None = None, **fields: Any):
    variables = {"program": {**PROGRAM, **fields}, "storeId": store_id, "key": key}
    return gql(client, ADD, variables, token)


def _error(body: dict[str, Any]) -> tuple[str, str | None, str]:
    (error,) = body["errors"]
    return error["extensions"]["code"], error["extensions"].get("field"), error["message"]


def _rows(services, sql: str) -> list[tuple[Any, ...]]:
    with services.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(sql))]


def test_a_program_is_added_with_every_setting_and_listed(client, token):
    # given a manager of the default store
    manager = token()
    # when it adds a program with denominations, expiry and limits
    body = _add(
        client,
        manager,
        denominations=["25.00", "10.00"],
        valueChangesAllowed=False,
        expiry={"kind": "AFTER_ISSUE", "days": 1825},
        maxBalance="500.00",
        maxDailyLoad="200.00",
        isDefault=True,
    )
    # then it is answered as stored, amounts as decimal strings
    added = body["data"]["giftcardProgramAdd"]
    assert added["storeId"] == "default" and added["code"] == "GC"
    assert added["codeFormat"] == {"prefix": "GC", "length": 16, "checkCharacter": True, "entropyBits": 65}
    assert added["denominations"] == ["10.00", "25.00"]
    assert (added["minValue"], added["maxValue"]) == (None, None)
    assert added["valueChangesAllowed"] is False
    assert added["expiry"] == {"kind": "AFTER_ISSUE", "days": 1825}
    assert (added["maxBalance"], added["maxDailyLoad"], added["isDefault"]) == ("500.00", "200.00", True)
    # and listed
    listed = gql(client, LIST, {}, manager)["data"]["giftcardPrograms"]
    assert listed == [{"id": added["id"], "storeId": "default", "code": "GC", "isDefault": True}]


@pytest.mark.parametrize(
    ("operation", "variables"),
    [
        (ADD, {"program": PROGRAM}),
        (EDIT, {"id": "1", "program": {"name": "x"}}),
        (LIST, {}),
    ],
)
def test_every_operation_needs_manage_programs(client, services, token, operation, variables):
    # given a token with every other permission of the admin role
    others = tuple(sorted(set(services.policy.roles["admin"]) - {"ManagePrograms"}))
    body = gql(client, operation, variables, token(permissions=others))
    # then it is refused, and so is a call without a token
    assert error_codes(body) == ["FORBIDDEN"] and "ManagePrograms" in body["errors"][0]["message"]
    assert error_codes(gql(client, operation, variables)) == ["UNAUTHENTICATED"]
    assert _rows(services, "SELECT id FROM programs") == []


def test_another_stores_program_reads_as_missing(client, services, token):
    # given a program of store a, and a manager of store b only
    of_a = _add(client, token(["a"]))["data"]["giftcardProgramAdd"]["id"]
    manager_of_b = token(["b"])
    # when b lists, edits a's program, and edits a program that does not exist
    listed = gql(client, LIST, {}, manager_of_b)["data"]["giftcardPrograms"]
    foreign = gql(client, EDIT, {"id": of_a, "program": {"name": "mine"}}, manager_of_b)
    missing = gql(client, EDIT, {"id": "999999", "program": {"name": "mine"}}, manager_of_b)
    # then b sees none of a's, and a's program answers exactly as a missing one
    assert listed == []
    assert _error(foreign) == _error(missing) == ("NOT_FOUND", "id", "id: no such program")
    assert _rows(services, "SELECT store_id, name FROM programs") == [("a", "Gift card")]


def test_a_store_outside_the_token_reads_as_unknown(client, token):
    # given store a exists, and a manager of store b
    _add(client, token(["a"]))
    manager_of_b = token(["b"])
    # when b asks for a's programs or adds one there, and for a store that does not exist
    answers = [
        gql(client, LIST, {"storeId": "a"}, manager_of_b),
        gql(client, LIST, {"storeId": "nowhere"}, manager_of_b),
        _add(client, manager_of_b, store_id="a"),
        _add(client, manager_of_b, store_id="nowhere"),
    ]
    # then every answer is the same refusal
    assert {_error(body) for body in answers} == {("NOT_FOUND", "storeId", "storeId: no such store")}


def test_a_token_of_several_stores_names_the_store(client, services, token):
    manager = token(["a", "b"])
    # when it adds without storeId, then it is asked for one
    code, field, _ = _error(_add(client, manager))
    assert (code, field) == ("BAD_USER_INPUT", "storeId")
    # when it names one of its stores, the program goes there
    assert _add(client, manager, store_id="b")["data"]["giftcardProgramAdd"]["storeId"] == "b"
    assert _rows(services, "SELECT store_id FROM programs") == [("b",)]
    assert len(gql(client, LIST, {"storeId": "b"}, manager)["data"]["giftcardPrograms"]) == 1
    assert gql(client, LIST, {"storeId": "a"}, manager)["data"]["giftcardPrograms"] == []


def test_all_stores_lists_every_store_and_names_one_to_add(client, token):
    # given programs in two stores
    _add(client, token(["a"]))
    _add(client, token(["b"]), code="B1")
    operator = token(permissions=("ManagePrograms", "AllStores"))
    # then the operator lists both, and must name a known store to add
    listed = gql(client, LIST, {}, operator)["data"]["giftcardPrograms"]
    assert [(item["storeId"], item["code"]) for item in listed] == [("a", "GC"), ("b", "B1")]
    assert _error(_add(client, operator))[:2] == ("BAD_USER_INPUT", "storeId")
    assert _error(_add(client, operator, store_id="nowhere"))[:2] == ("NOT_FOUND", "storeId")
    assert _add(client, operator, store_id="a", code="A2")["data"]["giftcardProgramAdd"]["storeId"] == "a"


def test_one_default_per_store(client, services, token):
    # given a default program in store a and one in store b
    manager_of_a = token(["a"])
    first = _add(client, manager_of_a, isDefault=True)["data"]["giftcardProgramAdd"]["id"]
    _add(client, token(["b"]), isDefault=True)
    # when a second program of a is made the default
    second = _add(client, manager_of_a, code="NEW", isDefault=True)["data"]["giftcardProgramAdd"]["id"]
    # then the first one no longer is, and b's default stays
    defaults = "SELECT store_id, code FROM programs WHERE is_default ORDER BY store_id"
    assert _rows(services, defaults) == [("a", "NEW"), ("b", "GC")]
    # and an edit moves it back
    moved = gql(client, EDIT, {"id": first, "program": {"isDefault": True}}, manager_of_a)
    assert moved["data"]["giftcardProgramEdit"]["isDefault"] is True
    assert _rows(services, defaults) == [("a", "GC"), ("b", "GC")]
    listed = gql(client, LIST, {}, manager_of_a)["data"]["giftcardPrograms"]
    assert {item["id"]: item["isDefault"] for item in listed} == {first: True, second: False}


def test_a_code_is_unique_within_its_store(client, services, token):
    manager_of_a = token(["a"])
    _add(client, manager_of_a)
    assert _error(_add(client, manager_of_a, name="Again"))[:2] == ("CONFLICT", "code")
    assert "errors" not in _add(client, token(["b"]))  # the same code in another store
    assert sorted(_rows(services, "SELECT store_id, name FROM programs")) == [
        ("a", "Gift card"),
        ("b", "Gift card"),
    ]


def test_currency_and_code_format_are_frozen_once_a_card_follows_the_program(client, services, token, seed):
    # given two programs, and a card that follows the first
    manager = token()
    used = _add(client, manager, maxBalance="100.00")["data"]["giftcardProgramAdd"]["id"]
    unused = _add(client, manager, code="FREE", maxBalance="100.00")["data"]["giftcardProgramAdd"]["id"]
    card_id = seed({})
    with services.engine.begin() as connection:
        connection.execute(
            text("UPDATE giftcards SET program_id = :p WHERE id = :c"), {"p": used, "c": card_id}
        )
    # when its currency or code format is changed
    currency = gql(client, EDIT, {"id": used, "program": {"currency": "EUR", "maxBalance": "90.00"}}, manager)
    code_format = gql(
        client, EDIT, {"id": used, "program": {"codeFormat": {"prefix": "XY", "length": 16}}}, manager
    )
    # then both are refused, naming the field, and nothing changed
    assert _error(currency)[:2] == ("CONFLICT", "currency")
    assert _error(code_format)[:2] == ("CONFLICT", "codeFormat")
    rows = "SELECT code, currency, code_prefix, max_balance FROM programs ORDER BY code"
    assert _rows(services, rows) == [("FREE", "USD", "GC", 10000), ("GC", "USD", "GC", 10000)]
    # and its other settings still change, as do the currency and format of the program without cards
    renamed = gql(client, EDIT, {"id": used, "program": {"name": "Renamed"}}, manager)
    assert renamed["data"]["giftcardProgramEdit"]["name"] == "Renamed"
    moved = gql(
        client,
        EDIT,
        {"id": unused, "program": {"currency": "JPY", "maxBalance": "9000", "codeFormat": {"length": 20}}},
        manager,
    )["data"]["giftcardProgramEdit"]
    assert (moved["currency"], moved["maxBalance"], moved["codeFormat"]) == (
        "JPY",
        "9000",
        {"prefix": "", "length": 20},
    )


def test_an_amount_stated_in_the_old_currency_is_refused_on_a_currency_change(client, token):
    # given a USD program with a maximum balance of 100.00
    manager = token()
    program = _add(client, manager, maxBalance="100.00")["data"]["giftcardProgramAdd"]["id"]
    # when it moves to JPY without restating the maximum, then it is asked for ("100.00" is not 100 JPY)
    body = gql(client, EDIT, {"id": program, "program": {"currency": "JPY"}}, manager)
    assert _error(body) == (
        "BAD_USER_INPUT",
        "maxBalance",
        "maxBalance: the currency changes, so give it again in JPY (or null)",
    )
    # and a restated amount in the old currency's decimals is refused as JPY has none
    body = gql(client, EDIT, {"id": program, "program": {"currency": "JPY", "maxBalance": "100.50"}}, manager)
    assert _error(body)[:2] == ("BAD_USER_INPUT", "maxBalance")


def test_edits_clear_optional_rules_and_refuse_null_for_the_others(client, token):
    manager = token()
    program = _add(client, manager, maxBalance="100.00", denominations=["10.00"])["data"][
        "giftcardProgramAdd"
    ]
    cleared = gql(
        client, EDIT, {"id": program["id"], "program": {"maxBalance": None, "denominations": None}}, manager
    )
    assert cleared["data"]["giftcardProgramEdit"]["maxBalance"] is None
    assert cleared["data"]["giftcardProgramEdit"]["denominations"] is None
    renewed = gql(
        client,
        EDIT,
        {"id": program["id"], "program": {"expiry": {"kind": "AFTER_ACTIVITY", "days": 2000}}},
        manager,
    )
    assert renewed["data"]["giftcardProgramEdit"]["expiry"] == {"kind": "AFTER_ACTIVITY", "days": 2000}
    never = gql(client, EDIT, {"id": program["id"], "program": {"expiry": None}}, manager)
    assert never["data"]["giftcardProgramEdit"]["expiry"] == {"kind": "NONE", "days": None}
    for field in ("name", "currency", "codeFormat", "isDefault"):
        body = gql(client, EDIT, {"id": program["id"], "program": {field: None}}, manager)
        assert _error(body)[:2] == ("BAD_USER_INPUT", field)
    assert _error(gql(client, EDIT, {"id": "x1", "program": {}}, manager))[:2] == ("BAD_USER_INPUT", "id")


def test_a_format_under_64_bits_is_refused(client, services, token):
    body = _add(client, token(), codeFormat={"prefix": "GCGC", "length": 16})
    assert _error(body) == (
        "BAD_USER_INPUT",
        "codeFormat",
        "codeFormat: leaves 55 bits of entropy; at least 64 needed (each random character gives 5; "
        "the prefix and the check character give none)",
    )
    assert _rows(services, "SELECT id FROM programs") == []


def test_an_expiry_shorter_than_the_minimum_is_refused(client, token):
    body = _add(client, token(), expiry={"kind": "AFTER_ACTIVITY", "days": 365})
    assert _error(body)[:2] == ("BAD_USER_INPUT", "expiry.days")


@pytest.mark.settings(min_expiry_days=30, max_balance=1000)
def test_the_minimum_expiry_and_the_ceiling_come_from_settings(client, token):
    manager = token()
    added = _add(client, manager, expiry={"kind": "AFTER_ISSUE", "days": 30}, maxBalance="1000.00")
    assert added["data"]["giftcardProgramAdd"]["expiry"] == {"kind": "AFTER_ISSUE", "days": 30}
    over = _add(client, manager, code="OVER", maxBalance="1000.01")
    assert _error(over)[:2] == ("BAD_USER_INPUT", "maxBalance")
    assert "1000.00 USD" in _error(over)[2]


def test_a_retry_with_the_same_key_adds_one_program_and_the_change_is_audited(client, services, token):
    manager = token()
    first = _add(client, manager, key="add-gc")["data"]["giftcardProgramAdd"]
    again = _add(client, manager, key="add-gc")["data"]["giftcardProgramAdd"]
    assert again == first
    assert _rows(services, "SELECT code FROM programs") == [("GC",)]
    outcomes = "SELECT action, outcome FROM audit_events WHERE action = 'giftcardProgramAdd' ORDER BY id"
    assert _rows(services, outcomes) == [("giftcardProgramAdd", "OK"), ("giftcardProgramAdd", "REPLAYED")]
    assert _error(_add(client, manager, key="add-gc", name="Other"))[0] == "CONFLICT"


def test_defaults_made_at_once_leave_one_and_refuse_the_rest_as_conflicts(client, services, token):
    # given four managers of one store making new programs its default at the same moment
    manager = token()
    bodies = in_parallel(4, lambda n: _add(client, manager, code=f"P{n}", isDefault=True))
    # then each is added or refused as a CONFLICT on isDefault, never INTERNAL, and one default is left
    added = [body for body in bodies if "errors" not in body]
    assert added and all(
        _error(body)[:2] == ("CONFLICT", "isDefault") for body in bodies if body not in added
    )
    assert len(_rows(services, "SELECT id FROM programs")) == len(added)
    assert len(_rows(services, "SELECT id FROM programs WHERE is_default")) == 1
