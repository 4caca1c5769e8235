"""The `giftcard` query: lookup modes, code matching, and the full permission/masking matrix."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from app.enums import CodeType
from tests.conftest import error_codes, gql

RESULT = """
    limitedByPermission
    results { id memberId balance currency codes { id codeType code expiresOn isMasked } }
"""
BY_CODE = f"""query ByCode($code: String!, $codeType: CodeType) {{
  giftcard(code: $code, codeType: $codeType) {{ {RESULT} }} }}"""
BY_ID = f"""query ById($id: ID!) {{ giftcard(id: $id) {{ {RESULT} }} }}"""
BY_MEMBER = f"""query ByMember($memberId: String!) {{ giftcard(memberId: $memberId) {{ {RESULT} }} }}"""

CODES = {
    CodeType.PHYSICAL: "PHYS-0000-1111",
    CodeType.EXTERNAL: "EXTN00002222",
    CodeType.PERSONAL: "ABCDEFGHJKLMNPQRSTUV",
    CodeType.SHORT_PERSONAL: "SHRT9999",
}
SHOWN = {  # normalised, as returned when shown in full
    CodeType.PHYSICAL: "PHYS00001111",
    CodeType.EXTERNAL: "EXTN00002222",
    CodeType.PERSONAL: "ABCDEFGHJKLMNPQRSTUV",
    CodeType.SHORT_PERSONAL: "SHRT9999",
}
MASKED = {
    CodeType.PERSONAL: "****************STUV",
    CodeType.SHORT_PERSONAL: "********",  # short codes are masked whole
}
USE = {
    CodeType.PHYSICAL: "UsePhysicalGiftCardCodes",
    CodeType.EXTERNAL: "UseExternalGiftCardCodes",
    CodeType.PERSONAL: "UseCryptoGiftCardCodes",
    CodeType.SHORT_PERSONAL: "UseShortPersonalGiftCardCodes",
}
UNMASK = "ViewUnmaskedGiftCardCodes"
LEVELS = ("none", "use", "use+unmask")


def _permissions(code_type: CodeType, level: str, *base: str) -> list[str]:
    names = list(base)
    if level != "none":
        names.append(USE[code_type])
    if level == "use+unmask":
        names.append(UNMASK)
    return names


def _expected(code_type: CodeType, level: str) -> tuple[str | None, bool]:
    """(code shown or None when left out, limitedByPermission) for a card with just that code."""
    if level == "none":
        return None, True
    if level == "use" and code_type in MASKED:
        return MASKED[code_type], True
    return SHOWN[code_type], False


def _only_result(body):
    assert "errors" not in body, body
    (card,) = body["data"]["giftcard"]["results"]
    return card


# --- the permission matrix --------------------------------------------------------------------


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("code_type", list(CodeType), ids=lambda t: t.value)
def test_matrix_by_id(client, mint, seed, code_type, level):
    # given a card reachable only through one code of this type
    card_id = seed({code_type: CODES[code_type]})
    token = mint(permissions=_permissions(code_type, level, "ListGiftCards"))
    # when a trusted caller looks it up by id
    body = gql(client, BY_ID, {"id": str(card_id)}, token=token)
    # then the code is left out, masked or shown, and limitedByPermission says so exactly
    card = _only_result(body)
    shown, limited = _expected(code_type, level)
    if shown is None:
        assert card["codes"] == []
    else:
        (code,) = card["codes"]
        assert code["code"] == shown
        assert code["isMasked"] is (shown != SHOWN[code_type])
        assert code["codeType"] == code_type.value
    assert body["data"]["giftcard"]["limitedByPermission"] is limited


@pytest.mark.parametrize("level", ("use", "use+unmask"))
@pytest.mark.parametrize("code_type", list(CodeType), ids=lambda t: t.value)
def test_matrix_by_code(client, mint, seed, code_type, level):
    # given a card with a code of every type
    seed(CODES)
    token = mint(permissions=_permissions(code_type, level, "FindGiftCardByCode"))
    # when an untrusted caller looks it up by the code of the type it may use
    body = gql(client, BY_CODE, {"code": CODES[code_type]}, token=token)
    # then it sees only that type's code (masked unless unmasked), and that it was limited
    card = _only_result(body)
    shown, _ = _expected(code_type, level)
    assert [(c["codeType"], c["code"]) for c in card["codes"]] == [(code_type.value, shown)]
    assert body["data"]["giftcard"]["limitedByPermission"] is True


@pytest.mark.parametrize("code_type", list(CodeType), ids=lambda t: t.value)
def test_matrix_by_code_without_use_permission(client, mint, seed, code_type):
    # given a card with a code of every type and a caller that may use every type but this one
    seed(CODES)
    others = [USE[t] for t in CodeType if t is not code_type]
    token = mint(permissions=["FindGiftCardByCode", *others])
    # when it looks the card up by the code of the type it may not use
    body = gql(client, BY_CODE, {"code": CODES[code_type]}, token=token)
    # then nothing is found (the search covers only usable types) ...
    assert body["data"]["giftcard"] == {"limitedByPermission": False, "results": []}
    # ... and naming the type outright is refused
    body = gql(client, BY_CODE, {"code": CODES[code_type], "codeType": code_type.value}, token=token)
    assert error_codes(body) == ["FORBIDDEN"]


@pytest.mark.parametrize("code_type", [CodeType.PHYSICAL, CodeType.EXTERNAL], ids=lambda t: t.value)
def test_lookup_by_code_is_not_limited_when_everything_is_shown(client, mint, seed, code_type):
    seed({code_type: CODES[code_type]})
    body = gql(
        client,
        BY_CODE,
        {"code": CODES[code_type]},
        token=mint(permissions=["FindGiftCardByCode", USE[code_type]]),
    )
    assert _only_result(body)["codes"][0]["code"] == SHOWN[code_type]
    assert body["data"]["giftcard"]["limitedByPermission"] is False


def test_all_types_unmasked_is_not_limited(client, mint, seed):
    card_id = seed(CODES)
    token = mint(permissions=["ListGiftCards", UNMASK, *USE.values()])
    body = gql(client, BY_ID, {"id": str(card_id)}, token=token)
    card = _only_result(body)
    assert {c["codeType"]: c["code"] for c in card["codes"]} == {t.value: SHOWN[t] for t in CodeType}
    assert not any(c["isMasked"] for c in card["codes"])
    assert body["data"]["giftcard"]["limitedByPermission"] is False


def test_all_types_without_unmask_masks_only_personal_kinds(client, mint, seed):
    card_id = seed(CODES)
    body = gql(client, BY_ID, {"id": str(card_id)}, token=mint(permissions=["ListGiftCards", *USE.values()]))
    card = _only_result(body)
    shown = {c["codeType"]: (c["code"], c["isMasked"]) for c in card["codes"]}
    assert shown == {
        "PHYSICAL": (SHOWN[CodeType.PHYSICAL], False),
        "EXTERNAL": (SHOWN[CodeType.EXTERNAL], False),
        "PERSONAL": (MASKED[CodeType.PERSONAL], True),
        "SHORT_PERSONAL": (MASKED[CodeType.SHORT_PERSONAL], True),
    }
    assert body["data"]["giftcard"]["limitedByPermission"] is True


# --- who may look up how ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "variables", "permissions", "expected"),
    [
        (BY_CODE, {"code": "PHYS00001111"}, ["UsePhysicalGiftCardCodes", "ListGiftCards"], "FORBIDDEN"),
        (BY_CODE, {"code": "PHYS00001111"}, ["FindGiftCardByCode"], "FORBIDDEN"),
        (BY_ID, {"id": "1"}, ["FindGiftCardByCode", "UsePhysicalGiftCardCodes"], "FORBIDDEN"),
        (BY_MEMBER, {"memberId": "C1"}, ["FindGiftCardByCode", "UsePhysicalGiftCardCodes"], "FORBIDDEN"),
        (BY_CODE, {"code": "PHYS00001111"}, None, "UNAUTHENTICATED"),
        (BY_ID, {"id": "1"}, None, "UNAUTHENTICATED"),
        (BY_MEMBER, {"memberId": "C1"}, None, "UNAUTHENTICATED"),
    ],
    ids=[
        "code-without-Find",
        "code-without-any-Use",
        "id-without-List",
        "member-without-List",
        "code-anonymous",
        "id-anonymous",
        "member-anonymous",
    ],
)
def test_lookup_mode_permissions(client, mint, seed, query, variables, permissions, expected):
    seed({CodeType.PHYSICAL: "PHYS00001111"}, member_id="C1")
    token = mint(permissions=permissions) if permissions is not None else None
    body = gql(client, query, variables, token=token)
    assert error_codes(body) == [expected]
    assert body["data"] == {"giftcard": None}


def test_trusted_caller_finds_by_code_id_and_member(client, mint, seed):
    first = seed({CodeType.PHYSICAL: "PHYS00001111"}, member_id="C1", balance=2500)
    second = seed({CodeType.EXTERNAL: "EXTN00002222"}, member_id="C1", balance=5)
    seed({CodeType.PHYSICAL: "OTHER0000001"}, member_id="C2")
    token = mint(roles=["backoffice"])
    by_code = _only_result(gql(client, BY_CODE, {"code": "PHYS00001111"}, token=token))
    by_id = _only_result(gql(client, BY_ID, {"id": str(first)}, token=token))
    assert by_code == by_id
    assert (by_id["balance"], by_id["memberId"], by_id["currency"]) == ("25.00", "C1", "USD")
    members = gql(client, BY_MEMBER, {"memberId": "C1"}, token=token)["data"]["giftcard"]["results"]
    assert [card["id"] for card in members] == [str(first), str(second)]
    assert members[1]["balance"] == "0.05"


def test_balance_uses_the_currency_exponent(client, mint, seed):
    card_id = seed({CodeType.PHYSICAL: "YEN000000001"}, currency="JPY", balance=500)
    card = _only_result(gql(client, BY_ID, {"id": str(card_id)}, token=mint(roles=["backoffice"])))
    assert (card["balance"], card["currency"]) == ("500", "JPY")


@pytest.mark.parametrize("typed", ["PHYS00001111", "phys00001111", "PHYS-0000-1111", " phys 0000 1111 "])
def test_codes_match_ignoring_case_spaces_and_dashes(client, mint, seed, typed):
    seed({CodeType.PHYSICAL: "PHYS00001111"})
    body = gql(client, BY_CODE, {"code": typed}, token=mint(roles=["storefront"]))
    assert _only_result(body)["codes"][0]["code"] == "PHYS00001111"


def test_nothing_found_is_an_empty_result_not_an_error(client, mint):
    body = gql(client, BY_CODE, {"code": "NOSUCHCODE01"}, token=mint(roles=["storefront"]))
    assert body == {"data": {"giftcard": {"limitedByPermission": False, "results": []}}}
    body = gql(client, BY_ID, {"id": "424242"}, token=mint(roles=["backoffice"]))
    assert body["data"]["giftcard"]["results"] == []


def test_revoked_codes_never_match_and_are_not_listed(client, mint, seed):
    card_id = seed(
        {CodeType.PHYSICAL: "REVOKED00001", CodeType.EXTERNAL: "LIVE00000001"}, revoked={CodeType.PHYSICAL}
    )
    token = mint(roles=["admin"])
    assert gql(client, BY_CODE, {"code": "REVOKED00001"}, token=token)["data"]["giftcard"]["results"] == []
    card = _only_result(gql(client, BY_ID, {"id": str(card_id)}, token=token))
    assert [c["code"] for c in card["codes"]] == ["LIVE00000001"]


def test_expired_codes_do_not_match_but_are_listed_with_their_date(client, mint, seed):
    yesterday = date.today() - timedelta(days=2)
    tomorrow = date.today() + timedelta(days=2)
    card_id = seed(
        {CodeType.PHYSICAL: "EXPIRED00001", CodeType.EXTERNAL: "STILLOK00001"},
        expires={CodeType.PHYSICAL: yesterday, CodeType.EXTERNAL: tomorrow},
    )
    token = mint(roles=["admin"])
    assert gql(client, BY_CODE, {"code": "EXPIRED00001"}, token=token)["data"]["giftcard"]["results"] == []
    assert _only_result(gql(client, BY_CODE, {"code": "STILLOK00001"}, token=token))["id"] == str(card_id)
    card = _only_result(gql(client, BY_ID, {"id": str(card_id)}, token=token))
    assert {c["codeType"]: c["expiresOn"] for c in card["codes"]} == {
        "PHYSICAL": yesterday.isoformat(),
        "EXTERNAL": tomorrow.isoformat(),
    }


def test_code_under_two_usable_types_needs_code_type(client, mint, seed):
    # given the same code as a PHYSICAL code of one card and an EXTERNAL code of another
    physical = seed({CodeType.PHYSICAL: "TWIN00000001"})
    external = seed({CodeType.EXTERNAL: "TWIN00000001"})
    both = mint(permissions=["FindGiftCardByCode", USE[CodeType.PHYSICAL], USE[CodeType.EXTERNAL]])
    # when looked up without codeType it is ambiguous ...
    body = gql(client, BY_CODE, {"code": "TWIN00000001"}, token=both)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "codeType"
    # ... codeType settles it ...
    for code_type, card_id in (("PHYSICAL", physical), ("EXTERNAL", external)):
        body = gql(client, BY_CODE, {"code": "TWIN00000001", "codeType": code_type}, token=both)
        assert _only_result(body)["id"] == str(card_id)
    # ... and a caller that may use only one of the types never sees the other
    only_physical = mint(permissions=["FindGiftCardByCode", USE[CodeType.PHYSICAL]])
    found = _only_result(gql(client, BY_CODE, {"code": "TWIN00000001"}, token=only_physical))
    assert found["id"] == str(physical)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("{ giftcard { results { id } } }", None),
        ('{ giftcard(code: "PHYS00001111", id: "1") { results { id } } }', "code,id"),
        ('{ giftcard(id: "1", memberId: "C1") { results { id } } }', "id,memberId"),
        ('{ giftcard(id: "1", codeType: PHYSICAL) { results { id } } }', "codeType"),
        ('{ giftcard(id: "abc") { results { id } } }', "id"),
        ('{ giftcard(id: "-1") { results { id } } }', "id"),
        ('{ giftcard(id: "99999999999999999999") { results { id } } }', "id"),
        ('{ giftcard(id: "²") { results { id } } }', "id"),
        ('{ giftcard(memberId: "") { results { id } } }', "memberId"),
        ('{ giftcard(code: "ab") { results { id } } }', "code"),
        ('{ giftcard(code: "BAD!CODE") { results { id } } }', "code"),
        ('{ giftcard(code: "' + "A" * 300 + '") { results { id } } }', "code"),
    ],
)
def test_bad_arguments_are_refused(client, mint, query, field):
    body = gql(client, query, token=mint(roles=["admin"]))
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"].get("field") == field


def test_design_examples_work_unchanged(client, mint, services):
    from app import demo

    demo.load(services, list(demo.WELL_KNOWN))
    token = mint(roles=["admin"])
    body = gql(
        client,
        """query { giftcard(code: "G59220000045", codeType: PHYSICAL) {
      limitedByPermission
      results { id memberId balance codes { id codeType code expiresOn isMasked } } } }""",
        token=token,
    )
    assert _only_result(body)["balance"] == "25.00"
    body = gql(client, 'query { giftcard(id: "302") { results { id } } }', token=token)
    assert body["data"]["giftcard"]["results"] == []
    body = gql(client, 'query { giftcard(memberId: "C000000113") { results { id memberId } } }', token=token)
    assert len(body["data"]["giftcard"]["results"]) == 2
    # and a card created after the bulk load gets a new id, after every loaded card's
    loaded = _ids_of_all_cards(services)
    body = gql(
        client,
        'mutation { giftcardAdd(giftcard: {physicalCode: "GC49288330", physicalPin: "1234"}) '
        "{ id codes { codeType code expiresOn } } }",
        token=token,
    )
    added = int(body["data"]["giftcardAdd"]["id"])
    assert len(loaded) == len(demo.WELL_KNOWN) and added > max(loaded)
    assert _ids_of_all_cards(services) == [*loaded, added]


def _ids_of_all_cards(services):
    from sqlalchemy import text

    with services.engine.connect() as connection:
        return connection.execute(text("SELECT id FROM giftcards ORDER BY id")).scalars().all()


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ('{ giftcard(code: "SECRETG5922!") { results { id } } }', None),  # malformed code
        ("query($c: Int!) { giftcard(code: $c) { results { id } } }", {"c": "SECRETG59220"}),
        ("query($c: String!) { giftcard(code: $c) { results { id } } }", {"c": ["SECRETG59220"]}),
        ('{ giftcard(code: "SECRETG59220" { results { id } } }', None),  # syntax error
        ('{ giftcard(code: 5, memberId: "SECRETG59220") { results { id } } }', None),
        ('mutation { giftcardAdd(giftcard: {physicalCodeExpiresOn: "SECRETG59220"}) { id } }', None),
    ],
    ids=["malformed", "variable-type", "variable-list", "syntax", "literal-type", "scalar-parse"],
)
def test_error_messages_never_echo_a_code(client, mint, query, variables):
    body = gql(client, query, variables, token=mint(roles=["admin"]))
    assert body["errors"] and all(error["extensions"]["code"] for error in body["errors"])
    assert "SECRET" not in str(body)
