"""giftcardReserveCodes and giftcardReservations: reserved PHYSICAL code stock for printed cards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

import app.domain.reservations as reservations
from app.config import Settings, load_settings
from app.domain.codes import ALPHABET
from app.domain.reservations import RESERVED_CODE_LENGTH
from app.enums import CodeType
from tests.conftest import error_codes, gql, make_settings
from tests.domain.test_reservations import has_valid_check_character

CAP = 5

RESERVE = """
mutation Reserve($count: Int!, $agency: String!, $requestName: String!, $single: Boolean,
                 $key: String) {
  giftcardReserveCodes(count: $count, agency: $agency, requestName: $requestName, single: $single,
                       idempotencyKey: $key) {
    id requestName agency single count createdAt expiresAt codes usedCount lapsed
  }
}
"""

RESERVATIONS = """
query Reservations($requestName: String!) {
  giftcardReservations(requestName: $requestName) {
    id requestName agency single count expiresAt codes usedCount lapsed
  }
}
"""

ADD = """
mutation Add($giftcard: GiftCardAddInput!) {
  giftcardAdd(giftcard: $giftcard) { id codes { codeType code } }
}
"""

EDIT = """
mutation Edit($giftcard: GiftCardEditInput!) {
  giftcardEdit(giftcard: $giftcard) { id codes { codeType code } }
}
"""

LOOKUP = """
query Lookup($code: String!) {
  giftcard(code: $code, codeType: PHYSICAL) { results { id } }
}
"""

PRINTER = ["ReserveGiftCardCodes", "CreateGiftCard"]


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path, max_reservation_batch=CAP)


def _reserve(client, token, count=3, agency="Print Co", request_name="spring-2026", **more):
    variables = {"count": count, "agency": agency, "requestName": request_name, **more}
    return gql(client, RESERVE, variables, token=token)


def _rows(services, sql: str) -> list[tuple]:
    with services.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(sql))]


def _reservation_count(services) -> int:
    return _rows(services, "SELECT COUNT(*) FROM code_reservations")[0][0]


def test_reserves_a_batch_of_unique_check_character_codes(client, mint, services):
    # given a printer's token
    token = mint(permissions=PRINTER, sub="printer-a")
    # when it reserves a full batch
    body = _reserve(client, token, count=CAP)
    # then the codes come back in full, unique, 14 symbols, each with a valid check character
    reservation = body["data"]["giftcardReserveCodes"]
    codes = reservation["codes"]
    assert len(codes) == CAP == len(set(codes)) == reservation["count"]
    for code in codes:
        assert len(code) == RESERVED_CODE_LENGTH and set(code) <= set(ALPHABET)
        assert has_valid_check_character(code)
    assert reservation["requestName"] == "spring-2026" and reservation["agency"] == "Print Co"
    assert (reservation["single"], reservation["expiresAt"]) == (False, None)
    assert (reservation["usedCount"], reservation["lapsed"]) == (0, False)
    # and the reservation is stored for its owner, with one row per code
    ((owner, count),) = _rows(services, "SELECT owner, count FROM code_reservations")
    assert (owner, count) == ("printer-a", CAP)
    assert _rows(services, "SELECT COUNT(*) FROM reserved_codes") == [(CAP,)]


def test_reserved_codes_are_stored_sealed_never_in_plain_text(client, mint, services, database_url):
    codes = _reserve(client, mint(permissions=PRINTER), count=CAP)["data"]["giftcardReserveCodes"]["codes"]
    # when everything stored about reservations is read back
    stored = repr(_rows(services, "SELECT * FROM reserved_codes"))
    stored += repr(_rows(services, "SELECT * FROM code_reservations"))
    if database_url.startswith("sqlite"):
        path = Path(database_url.removeprefix("sqlite:///"))
        raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    else:
        raw = "\n".join(row[0] for row in _rows(services, "SELECT t::text FROM reserved_codes t")).encode()
    # then no code appears beyond its (intentionally kept) last four characters
    last4 = {row[0] for row in _rows(services, "SELECT last4 FROM reserved_codes")}
    assert last4 == {code[-4:] for code in codes}
    for code in codes:
        head = code[:-4]
        assert head not in stored and head.lower() not in stored and head.encode().hex() not in stored
        assert head.encode() not in raw and head.encode().hex().encode() not in raw


@pytest.mark.parametrize("count", [0, -1, CAP + 1, 10_000])
def test_count_outside_1_to_the_cap_is_refused_not_truncated(client, mint, services, count):
    body = _reserve(client, mint(permissions=PRINTER), count=count)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "count"
    assert f"1 to {CAP}" in body["errors"][0]["message"]
    assert _reservation_count(services) == 0


def test_the_cap_is_a_setting_defaulting_to_500(tmp_path):
    assert Settings().max_reservation_batch == 500
    environ = {"GIFTCARDS_MAX_RESERVATION_BATCH": "20", "GIFTCARDS_STATE_DIR": str(tmp_path)}
    assert load_settings(environ).max_reservation_batch == 20


@pytest.mark.parametrize("count", [2, CAP])
def test_single_needs_count_1(client, mint, services, count):
    body = _reserve(client, mint(permissions=PRINTER), count=count, single=True)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "count"
    assert _reservation_count(services) == 0


def test_single_reservation_expires_after_an_hour(client, mint):
    before = datetime.now(UTC)
    body = _reserve(client, mint(permissions=PRINTER), count=1, single=True)
    reservation = body["data"]["giftcardReserveCodes"]
    assert reservation["single"] is True and len(reservation["codes"]) == 1
    expires_at = datetime.fromisoformat(reservation["expiresAt"])
    assert before + timedelta(hours=1) <= expires_at <= datetime.now(UTC) + timedelta(hours=1)


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"agency": ""}, "agency"),
        ({"agency": "x" * 129}, "agency"),
        ({"agency": "Print\nCo"}, "agency"),
        ({"requestName": ""}, "requestName"),
        ({"requestName": "r" * 129}, "requestName"),
        ({"requestName": "tab\there"}, "requestName"),
    ],
)
def test_agency_and_request_name_are_1_to_128_printable_characters(client, mint, services, variables, field):
    given = {"count": 1, "agency": "Print Co", "requestName": "spring-2026"} | variables
    body = gql(client, RESERVE, given, token=mint(permissions=PRINTER))
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == field
    assert field in body["errors"][0]["message"]
    assert _reservation_count(services) == 0


def test_longest_names_are_accepted(client, mint):
    body = _reserve(client, mint(permissions=PRINTER), agency="a" * 128, request_name="r" * 128)
    assert body["data"]["giftcardReserveCodes"]["agency"] == "a" * 128


def test_owner_creating_a_card_with_a_reserved_code_consumes_it(client, mint):
    # given two reserved codes
    token = mint(permissions=PRINTER, sub="printer-a")
    first, second = _reserve(client, token, count=2)["data"]["giftcardReserveCodes"]["codes"]
    # when the owner creates a card with one of them (spelled with dashes and in lower case)
    spelled = f"{first[:7]}-{first[7:]}".lower()
    body = gql(client, ADD, {"giftcard": {"physicalCode": spelled}}, token=token)
    # then the card has the code, and the reservation counts it as used
    card = body["data"]["giftcardAdd"]
    assert card["codes"] == [{"codeType": "PHYSICAL", "code": first}]
    (listed,) = gql(client, RESERVATIONS, {"requestName": "spring-2026"}, token=token)["data"][
        "giftcardReservations"
    ]
    assert listed["usedCount"] == 1
    found = gql(
        client,
        LOOKUP,
        {"code": first},
        token=mint(permissions=["FindGiftCardByCode", "UsePhysicalGiftCardCodes"]),
    )
    assert found["data"]["giftcard"]["results"] == [{"id": card["id"]}]
    # and the code cannot be given to a second card
    again = gql(client, ADD, {"giftcard": {"physicalCode": first}}, token=token)
    assert error_codes(again) == ["CONFLICT"]
    # while the other reserved code is still the owner's to use
    assert "errors" not in gql(client, ADD, {"giftcard": {"physicalCode": second}}, token=token)


def test_another_client_cannot_take_a_reserved_code(client, mint, services):
    (code,) = _reserve(client, mint(permissions=PRINTER, sub="printer-a"), count=1)["data"][
        "giftcardReserveCodes"
    ]["codes"]
    # when a different subject creates a card with it (with another code alongside)
    intruder = mint(permissions=["CreateGiftCard"], sub="shop-b")
    body = gql(
        client, ADD, {"giftcard": {"physicalCode": code, "externalCode": "EXT-RES-0001"}}, token=intruder
    )
    # then it is refused naming the field, and nothing was written
    assert error_codes(body) == ["CONFLICT"]
    assert body["errors"][0]["extensions"]["field"] == "physicalCode"
    assert code not in body["errors"][0]["message"]
    assert _rows(services, "SELECT COUNT(*) FROM giftcards") == [(0,)]
    assert _rows(services, "SELECT COUNT(*) FROM reserved_codes WHERE used_at IS NOT NULL") == [(0,)]


def test_a_reserved_code_cannot_be_another_clients_external_code(client, mint, seed, services):
    # given a code reserved by one client, and another client's card
    (code,) = _reserve(client, mint(permissions=PRINTER, sub="printer-a"), count=1)["data"][
        "giftcardReserveCodes"
    ]["codes"]
    card_id = seed({CodeType.PHYSICAL: "OTHERCARD0001"})
    intruder = mint(permissions=["CreateGiftCard", "EditGiftCard"], sub="shop-b")
    spelled = f"{code[:5]}-{code[5:]}".lower()
    # when that client gives the code as an EXTERNAL code, to a new card or to its card
    added = gql(client, ADD, {"giftcard": {"externalCode": spelled}}, token=intruder)
    edited = gql(client, EDIT, {"giftcard": {"id": str(card_id), "externalCode": code}}, token=intruder)
    # then both are refused as reserved, naming the field without echoing the code
    for body in (added, edited):
        assert error_codes(body) == ["CONFLICT"]
        (error,) = body["errors"]
        assert error["extensions"]["field"] == "externalCode"
        assert "reserved" in error["message"]
        assert code not in error["message"].upper() and code[:-4] not in error["message"].upper()
    # and nothing was written: no new card, no new code, the stock untouched
    assert _rows(services, "SELECT COUNT(*) FROM giftcards") == [(1,)]
    assert _rows(services, "SELECT code_type FROM giftcard_codes") == [("PHYSICAL",)]
    assert _rows(services, "SELECT COUNT(*) FROM reserved_codes WHERE used_at IS NOT NULL") == [(0,)]


def test_the_owner_may_give_its_reserved_code_as_external_and_still_print_it(client, mint):
    # given a code the owner reserved
    owner = mint(permissions=PRINTER, sub="printer-a")
    (code,) = _reserve(client, owner, count=1)["data"]["giftcardReserveCodes"]["codes"]
    # when the owner gives it as an EXTERNAL code
    external = gql(client, ADD, {"giftcard": {"externalCode": code}}, token=owner)
    assert external["data"]["giftcardAdd"]["codes"] == [{"codeType": "EXTERNAL", "code": code}]
    # then it stays in stock, and the owner's printed card still takes it from there
    (listed,) = gql(client, RESERVATIONS, {"requestName": "spring-2026"}, token=owner)["data"][
        "giftcardReservations"
    ]
    assert listed["usedCount"] == 0
    printed = gql(client, ADD, {"giftcard": {"physicalCode": code}}, token=owner)
    assert printed["data"]["giftcardAdd"]["codes"] == [{"codeType": "PHYSICAL", "code": code}]
    (listed,) = gql(client, RESERVATIONS, {"requestName": "spring-2026"}, token=owner)["data"][
        "giftcardReservations"
    ]
    assert listed["usedCount"] == 1


def test_an_unexpired_single_code_is_still_reserved(client, mint):
    (code,) = _reserve(client, mint(permissions=PRINTER, sub="printer-a"), count=1, single=True)["data"][
        "giftcardReserveCodes"
    ]["codes"]
    body = gql(
        client,
        ADD,
        {"giftcard": {"physicalCode": code}},
        token=mint(permissions=["CreateGiftCard"], sub="shop-b"),
    )
    assert error_codes(body) == ["CONFLICT"]


def test_a_lapsed_single_code_is_free_for_anyone(client, mint, services):
    # given a single reservation whose hour has passed without a card taking its code
    owner = mint(permissions=PRINTER, sub="printer-a")
    (code,) = _reserve(client, owner, count=1, single=True)["data"]["giftcardReserveCodes"]["codes"]
    with services.engine.begin() as connection:
        connection.execute(
            text("UPDATE code_reservations SET expires_at = :past"),
            {"past": datetime.now(UTC) - timedelta(minutes=1)},
        )
    (listed,) = gql(client, RESERVATIONS, {"requestName": "spring-2026"}, token=owner)["data"][
        "giftcardReservations"
    ]
    assert (listed["lapsed"], listed["usedCount"]) == (True, 0)
    # when another client creates a card with that code
    body = gql(
        client,
        ADD,
        {"giftcard": {"physicalCode": code}},
        token=mint(permissions=["CreateGiftCard"], sub="shop-b"),
    )
    # then it succeeds, and the owner sees the code as taken
    assert body["data"]["giftcardAdd"]["codes"] == [{"codeType": "PHYSICAL", "code": code}]
    (listed,) = gql(client, RESERVATIONS, {"requestName": "spring-2026"}, token=owner)["data"][
        "giftcardReservations"
    ]
    assert (listed["lapsed"], listed["usedCount"]) == (False, 1)


def test_a_lapsed_single_code_taken_by_a_card_is_still_free_under_other_types(client, mint, services):
    # given a lapsed single code that another client then printed on its card
    (code,) = _reserve(client, mint(permissions=PRINTER, sub="printer-a"), count=1, single=True)["data"][
        "giftcardReserveCodes"
    ]["codes"]
    with services.engine.begin() as connection:
        connection.execute(
            text("UPDATE code_reservations SET expires_at = :past"),
            {"past": datetime.now(UTC) - timedelta(minutes=1)},
        )
    printed = gql(
        client,
        ADD,
        {"giftcard": {"physicalCode": code}},
        token=mint(permissions=["CreateGiftCard"], sub="shop-b"),
    )
    assert "errors" not in printed
    # when a third client gives it as an EXTERNAL code
    body = gql(
        client,
        ADD,
        {"giftcard": {"externalCode": code}},
        token=mint(permissions=["CreateGiftCard"], sub="shop-c"),
    )
    # then it is an ordinary free code for that type
    assert body["data"]["giftcardAdd"]["codes"] == [{"codeType": "EXTERNAL", "code": code}]


def test_listing_shows_only_own_reservations_with_masked_codes(client, mint):
    # given reservations by two subjects under one request name, and one under another name
    mine = mint(permissions=PRINTER, sub="printer-a")
    theirs = mint(permissions=PRINTER, sub="printer-b")
    first = _reserve(client, mine, count=2)["data"]["giftcardReserveCodes"]
    second = _reserve(client, mine, count=1, single=True, agency="Kiosk")["data"]["giftcardReserveCodes"]
    _reserve(client, theirs, count=1)
    _reserve(client, mine, count=1, request_name="autumn-2026")
    # when the first subject lists the request name
    body = gql(client, RESERVATIONS, {"requestName": "spring-2026"}, token=mine)
    # then only its own two reservations come back, oldest first, codes masked to their last four
    listed = body["data"]["giftcardReservations"]
    assert [item["id"] for item in listed] == [first["id"], second["id"]]
    for item, made in zip(listed, (first, second), strict=True):
        assert item["codes"] == ["*" * (RESERVED_CODE_LENGTH - 4) + code[-4:] for code in made["codes"]]
        assert (item["agency"], item["single"], item["count"]) == (
            made["agency"],
            made["single"],
            made["count"],
        )
        assert item["expiresAt"] == made["expiresAt"] or (
            datetime.fromisoformat(item["expiresAt"]) == datetime.fromisoformat(made["expiresAt"])
        )
        assert (item["usedCount"], item["lapsed"]) == (0, False)
    # and a name nobody used lists nothing
    assert gql(client, RESERVATIONS, {"requestName": "none"}, token=mine)["data"] == {
        "giftcardReservations": []
    }


def test_listing_refuses_a_bad_request_name(client, mint):
    body = gql(client, RESERVATIONS, {"requestName": ""}, token=mint(permissions=PRINTER))
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "requestName"


@pytest.mark.parametrize(
    ("permissions", "expected"),
    [
        (None, "UNAUTHENTICATED"),
        (["CreateGiftCard", "ListGiftCards", "EditGiftCard"], "FORBIDDEN"),
    ],
)
def test_both_operations_need_reserve_permission(client, mint, services, permissions, expected):
    token = None if permissions is None else mint(permissions=permissions)
    assert error_codes(_reserve(client, token)) == [expected]
    assert error_codes(gql(client, RESERVATIONS, {"requestName": "spring-2026"}, token=token)) == [expected]
    assert _reservation_count(services) == 0


def test_backoffice_role_may_reserve(client, mint):
    assert "errors" not in _reserve(client, mint(roles=["backoffice"]))


def test_replay_with_the_same_key_returns_the_same_codes_and_writes_nothing(client, mint, services):
    token = mint(permissions=PRINTER)
    first = _reserve(client, token, count=3, key="print-run-1")["data"]["giftcardReserveCodes"]
    # when the request is retried with the same key
    again = _reserve(client, token, count=3, key="print-run-1")["data"]["giftcardReserveCodes"]
    # then it gets the same answer, codes in full, and no second reservation exists
    assert again == first
    assert _reservation_count(services) == 1
    assert _rows(services, "SELECT COUNT(*) FROM reserved_codes") == [(3,)]


def test_same_key_with_other_input_is_a_conflict(client, mint, services):
    token = mint(permissions=PRINTER)
    _reserve(client, token, count=3, key="print-run-1")
    body = _reserve(client, token, count=4, key="print-run-1")
    assert error_codes(body) == ["CONFLICT"]
    assert body["errors"][0]["extensions"]["field"] == "idempotencyKey"
    assert _reservation_count(services) == 1


def test_keys_are_scoped_to_the_subject(client, mint, services):
    _reserve(client, mint(permissions=PRINTER, sub="printer-a"), key="k1")
    body = _reserve(client, mint(permissions=PRINTER, sub="printer-b"), key="k1")
    assert "errors" not in body
    assert _reservation_count(services) == 2


def test_a_code_that_is_taken_is_drawn_again(client, mint, seed, monkeypatch):
    # given a card with a PHYSICAL code and an earlier reservation, both of which the generator
    # will produce again, and a generator that repeats itself within the batch
    token = mint(permissions=PRINTER)
    (reserved,) = _reserve(client, token, count=1)["data"]["giftcardReserveCodes"]["codes"]
    on_card = "ABCDEFGHJKLMN" + reservations.check_character("ABCDEFGHJKLMN")
    seed({CodeType.PHYSICAL: on_card})
    fresh = ["PQRSTUVWXYZ23", "456789ABCDEFG"]
    fresh = [body + reservations.check_character(body) for body in fresh]
    drawn = iter([on_card, reserved, fresh[0], fresh[0], fresh[1]])
    monkeypatch.setattr(reservations, "generate_reserved_code", lambda: next(drawn))
    # when two codes are reserved
    body = _reserve(client, token, count=2)
    # then only free, distinct codes were kept
    assert body["data"]["giftcardReserveCodes"]["codes"] == fresh


@pytest.mark.parametrize("code_type", [CodeType.EXTERNAL, CodeType.PERSONAL])
def test_a_code_a_card_holds_under_any_type_is_not_reserved(client, mint, seed, monkeypatch, code_type):
    # given a card holding, as a non-PHYSICAL code, a value the generator will produce first
    on_card = "ABCDEFGHJKLMN" + reservations.check_character("ABCDEFGHJKLMN")
    fresh = "PQRSTUVWXYZ23" + reservations.check_character("PQRSTUVWXYZ23")
    seed({CodeType.PHYSICAL: "HOLDERPHYS01", code_type: on_card}, member_id="M1")
    drawn = iter([on_card, fresh])
    monkeypatch.setattr(reservations, "generate_reserved_code", lambda: next(drawn))
    # when a code is reserved
    body = _reserve(client, mint(permissions=PRINTER), count=1)
    # then the card's code was drawn again
    assert body["data"]["giftcardReserveCodes"]["codes"] == [fresh]
