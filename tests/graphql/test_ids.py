"""Ids through the API: 64-bit strings from one generator, so one kind's id never finds another's;
ids from before (small) still address their rows and sort first."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from tests.conftest import answered, error_codes, gql

ADD = """mutation A($giftcard: GiftCardAddInput!) { giftcardAdd(giftcard: $giftcard) { id codes { id } } }"""
TRANS = """mutation T($trans: GiftCardTransInput!) { giftcardTransAdd(trans: $trans) { id giftcardId } }"""
BY_ID = """query ById($id: ID!) { giftcard(id: $id) { results { id balance } } }"""
EDIT = """mutation E($giftcard: GiftCardEditInput!) { giftcardEdit(giftcard: $giftcard) { id } }"""
CAPTURE = """mutation C($id: ID!) { giftcardTransCapture(id: $id) { id } }"""
LIST = """{ giftcards(first: 10) { edges { node { id } } } }"""
CODE = "IDSPHYSICAL1"


def _funded_card(client, admin):
    card = answered(gql(client, ADD, {"giftcard": {"physicalCode": CODE}}, token=admin), "giftcardAdd")
    trans = {"codeType": "PHYSICAL", "code": CODE, "transType": "ADD", "amount": "5.00"}
    entry = answered(gql(client, TRANS, {"trans": trans}, token=admin), "giftcardTransAdd")
    return card, entry


def test_new_ids_are_64_bit_decimal_strings_distinct_across_kinds(client, admin):
    card, entry = _funded_card(client, admin)
    (code,) = card["codes"]
    ids = [card["id"], code["id"], entry["id"], entry["giftcardId"]]
    # strings, never JSON numbers (a JavaScript number loses digits above 2^53)
    assert all(isinstance(item_id, str) and item_id.isdigit() for item_id in ids)
    assert all(2**31 < int(item_id) < 2**63 for item_id in ids)
    assert entry["giftcardId"] == card["id"]
    assert len({card["id"], code["id"], entry["id"]}) == 3


def test_a_transaction_id_finds_no_card_as_a_missing_card(client, admin):
    card, entry = _funded_card(client, admin)

    as_card = gql(client, BY_ID, {"id": entry["id"]}, token=admin)
    edited = gql(client, EDIT, {"giftcard": {"id": entry["id"], "note": "x"}}, token=admin)

    assert answered(as_card, "giftcard")["results"] == []
    assert error_codes(edited) == ["NOT_FOUND"] and edited["errors"][0]["extensions"]["field"] == "id"
    # while the card's own id still finds it, unchanged
    assert answered(gql(client, BY_ID, {"id": card["id"]}, token=admin), "giftcard")["results"] == [
        {"id": card["id"], "balance": "5.00"}
    ]


def test_a_card_id_finds_no_transaction(client, admin):
    card, _ = _funded_card(client, admin)
    body = gql(client, CAPTURE, {"id": card["id"]}, token=admin)
    assert error_codes(body) == ["NOT_FOUND"]
    assert body["errors"][0]["message"] == "id: no such transaction"


def test_a_valid_64_bit_id_of_no_row_is_not_found(client, admin):
    _funded_card(client, admin)
    assert answered(gql(client, BY_ID, {"id": str(2**63 - 1)}, token=admin), "giftcard")["results"] == []


def test_a_card_from_before_keeps_its_small_id_and_lists_before_new_ones(client, admin, services):
    # given a card stored with a small id, as every card was before 64-bit ids
    now = datetime.now(UTC)
    with services.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO giftcards (id, currency, state, balance, created_at, updated_at) "
                "VALUES (7, 'USD', 'PENDING', 0, :now, :now)"
            ),
            {"now": now},
        )
    # when a card is added after it
    card, _ = _funded_card(client, admin)
    # then "7" still finds the old one, and the listing (in id order) puts it first
    assert answered(gql(client, BY_ID, {"id": "7"}, token=admin), "giftcard")["results"] == [
        {"id": "7", "balance": "0.00"}
    ]
    listed = answered(gql(client, LIST, token=admin), "giftcards")["edges"]
    assert [edge["node"]["id"] for edge in listed] == ["7", card["id"]]


RESERVE = """mutation R { giftcardReserveCodes(count: 2, agency: "PrintCo", requestName: "ids") { id } }"""
TABLES = (
    "giftcards",
    "giftcard_codes",
    "giftcard_transactions",
    "giftcard_events",
    "code_reservations",
    "reserved_codes",
    "audit_events",
)


def test_every_kind_of_row_the_server_writes_gets_a_64_bit_id_from_the_one_generator(
    client, admin, mint, services
):
    _funded_card(client, admin)
    printer = mint(permissions=["ReserveGiftCardCodes"], sub="printer")
    reservation = answered(gql(client, RESERVE, token=printer), "giftcardReserveCodes")
    gql(client, EDIT, {"giftcard": {"id": "1", "note": "x"}}, token=admin)  # an audited refusal

    with services.engine.connect() as connection:
        ids = {table: connection.execute(text(f"SELECT id FROM {table}")).scalars().all() for table in TABLES}
    assert all(ids[table] for table in TABLES), ids
    every = [item_id for table in TABLES for item_id in ids[table]]
    assert all(2**31 < item_id < 2**63 for item_id in every)
    assert len(set(every)) == len(every)  # no id of one kind is the id of another
    assert ids["code_reservations"] == [int(reservation["id"])]
