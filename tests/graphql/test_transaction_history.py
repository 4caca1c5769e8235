"""`giftcardTransactions` and the balance check on a card: paging, filters, permissions, balances
before and after each row, available balance, open authorizations and a card's latest
transactions."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, insert, update
from sqlmodel import col

from app.enums import CodeType
from app.models import GiftCard, LedgerEntry
from tests.conftest import error_codes, gql, transaction

HISTORY = """query H($first: Int, $after: String, $filter: GiftCardTransactionFilter) {
  giftcardTransactions(first: $first, after: $after, filter: $filter) {
    edges { cursor node { id giftcardId transType status amount currency balance availableBalance
                          balanceBefore balanceAfter sourceId refNo } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  } }"""
TRANS = """mutation T($trans: GiftCardTransInput!) { giftcardTransAdd(trans: $trans) {
  id status balance availableBalance } }"""
CAPTURE = "mutation C($id: ID!) { giftcardTransCapture(id: $id) { id status } }"
CANCEL = "mutation X($id: ID!) { giftcardTransCancel(id: $id) { id status } }"
CARD = """query Card($id: ID!, $first: Int) { giftcard(id: $id) { results {
  id balance availableBalance
  openAuthorizations { id status amount holdExpiresAt }
  transactions(first: $first) { id amount balanceBefore balanceAfter availableBalance } } } }"""
BALANCE = """query B($id: ID!) { giftcard(id: $id) { results { balance availableBalance } } }"""
CODE = "HISTPHYS0001"


@pytest.fixture
def office(mint):
    """A back-office operator: lists cards and transactions, adds and spends by card id."""
    return mint(roles=["backoffice"], sub="office")


@pytest.fixture
def card(seed):
    return seed({CodeType.PHYSICAL: CODE, CodeType.EXTERNAL: "HISTEXTN0001"}, member_id="M1")


def _history(client, token, **variables):
    body = gql(client, HISTORY, variables, token=token)
    assert "errors" not in body, body
    return body["data"]["giftcardTransactions"]


def _ids(page) -> list[int]:
    return [int(edge["node"]["id"]) for edge in page["edges"]]


def _refused(client, token, **variables) -> tuple[str, str | None]:
    body = gql(client, HISTORY, variables, token=token)
    assert (body["data"] or {}).get("giftcardTransactions") is None
    (code,) = error_codes(body)
    return code, body["errors"][0]["extensions"].get("field")


def _trans(client, token, card_id: int, amount: str, trans_type: str | None = None, **extra) -> dict:
    kind = trans_type or ("ADD" if not amount.startswith("-") else "USE")
    trans = {"giftcardId": str(card_id), "transType": kind, "amount": amount, **extra}
    body = gql(client, TRANS, {"trans": trans}, token=token)
    assert "errors" not in body, body
    return body["data"]["giftcardTransAdd"]


def _insert(services, card_id: int, count: int, **values) -> list[int]:
    """Ledger rows written straight to the table (paging tests need many, fast)."""
    now = datetime.now(UTC)
    row = {
        "giftcard_id": card_id,
        "trans_type": "IMPORT",
        "status": "COMPLETED",
        "amount": 1,
        "balance_before": 0,
        "balance_after": 1,
        "partial": False,
        "created_at": now,
        **values,
    }
    table = LedgerEntry.__table__  # type: ignore[attr-defined]
    with services.engine.begin() as connection:
        return [connection.execute(insert(table).values(**row)).inserted_primary_key[0] for _ in range(count)]


def _set_entry(services, entry_id: int, **values) -> None:
    with transaction(services) as session:
        session.execute(update(LedgerEntry).where(col(LedgerEntry.id) == entry_id).values(**values))


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _card(client, token, card_id: int, **variables) -> dict:
    body = gql(client, CARD, {"id": str(card_id), **variables}, token=token)
    assert "errors" not in body, body
    (result,) = body["data"]["giftcard"]["results"]
    return result


# --- paging ---------------------------------------------------------------------------------------


def test_empty_history(client, office):
    assert _history(client, office) == {
        "edges": [],
        "pageInfo": {"hasNextPage": False, "hasPreviousPage": False, "startCursor": None, "endCursor": None},
    }


def test_default_page_is_30_transactions_oldest_first(client, office, card, services):
    # given 35 transactions
    entries = _insert(services, card, 35)
    # when listed without first
    page = _history(client, office)
    # then the first 30 come in order, and the cursor continues behind them
    assert _ids(page) == entries[:30]
    info = page["pageInfo"]
    assert (info["hasNextPage"], info["hasPreviousPage"]) == (True, False)
    assert (info["startCursor"], info["endCursor"]) == (
        page["edges"][0]["cursor"],
        page["edges"][-1]["cursor"],
    )
    rest = _history(client, office, after=info["endCursor"])
    assert _ids(rest) == entries[30:]
    assert (rest["pageInfo"]["hasNextPage"], rest["pageInfo"]["hasPreviousPage"]) == (False, True)


def test_at_most_100_transactions_per_page(client, office, card, services):
    entries = _insert(services, card, 101)
    page = _history(client, office, first=100)
    assert _ids(page) == entries[:100] and page["pageInfo"]["hasNextPage"] is True
    last = _history(client, office, first=100, after=page["pageInfo"]["endCursor"])
    assert _ids(last) == entries[100:] and last["pageInfo"]["hasNextPage"] is False


@pytest.mark.parametrize("first", [101, 1000, 0, -1])
def test_page_sizes_out_of_range_are_refused_not_clamped(client, office, first):
    assert _refused(client, office, first=first) == ("BAD_USER_INPUT", "first")


def test_cursor_walk_is_stable_while_transactions_are_added(client, office, card, services):
    # given 25 transactions
    originals = _insert(services, card, 25)
    added: list[int] = []
    seen: list[int] = []
    after = None
    # when a client walks the history 10 at a time while 2 transactions are made after every page
    for _ in range(20):
        page = _history(client, office, first=10, after=after)
        seen += _ids(page)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        added += [int(_trans(client, office, card, "1.00")["id"]) for _ in range(2)]
    # then every transaction comes exactly once, the originals first, the new ones at the end
    assert len(seen) == len(set(seen))
    assert seen[:25] == originals
    assert seen[25:] == added and len(added) == 4


@pytest.mark.parametrize(
    "after",
    [
        "",
        "not a cursor!",
        _cursor("gt:abc"),
        _cursor("gt:0"),
        _cursor("gt:007"),
        _cursor("gt:1") + "==",
        _cursor("gt:" + "9" * 19),
        _cursor("gc:1"),  # a cursor of the card listing
    ],
)
def test_foreign_cursors_are_refused(client, office, after):
    assert _refused(client, office, after=after) == ("BAD_USER_INPUT", "after")


def test_card_listing_does_not_take_history_cursors(client, office, card, services):
    _insert(services, card, 2)
    cursor = _history(client, office, first=1)["pageInfo"]["endCursor"]
    body = gql(
        client, "query($a: String) { giftcards(after: $a) { edges { cursor } } }", {"a": cursor}, token=office
    )
    assert error_codes(body) == ["BAD_USER_INPUT"]


def test_a_page_costs_one_statement_whatever_its_size(client, office, card, services):
    _insert(services, card, 120)
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(services.engine, "before_cursor_execute", count)
    try:
        sizes = {}
        for first in (10, 100):
            statements.clear()
            page = _history(
                client, office, first=first, filter={"codeType": "PHYSICAL", "code": CODE, "memberId": "M1"}
            )
            assert len(page["edges"]) == first
            sizes[first] = len(statements)
    finally:
        event.remove(services.engine, "before_cursor_execute", count)
    assert sizes == {10: 1, 100: 1}


# --- filters --------------------------------------------------------------------------------------


def test_filter_by_card(client, office, card, seed, services):
    other = seed({CodeType.PHYSICAL: "OTHERPHYS001"})
    mine = _insert(services, card, 2)
    theirs = _insert(services, other, 2)
    assert _ids(_history(client, office, filter={"giftcardId": str(card)})) == mine
    assert _ids(_history(client, office, filter={"giftcardId": str(other)})) == theirs
    assert _history(client, office, filter={"giftcardId": "999999"})["edges"] == []
    assert _refused(client, office, filter={"giftcardId": "abc"}) == ("BAD_USER_INPUT", "giftcardId")


def test_filter_by_member(client, office, card, seed, services):
    second = seed({CodeType.PHYSICAL: "MEMBERPHYS02"}, member_id="M1")
    stranger = seed({CodeType.PHYSICAL: "STRANGERPHY1"}, member_id="M2")
    first_entries = _insert(services, card, 1)
    _insert(services, stranger, 1)
    second_entries = _insert(services, second, 1)
    assert _ids(_history(client, office, filter={"memberId": "M1"})) == first_entries + second_entries
    assert _history(client, office, filter={"memberId": "M3"})["edges"] == []
    assert _refused(client, office, filter={"memberId": "has space"}) == ("BAD_USER_INPUT", "memberId")


def test_filter_by_code(client, office, card, seed, services):
    # given two cards with transactions, one with a revoked EXTERNAL code
    other = seed(
        {CodeType.PHYSICAL: "OTHERPHYS001", CodeType.EXTERNAL: "REVOKEDEXT01"}, revoked={CodeType.EXTERNAL}
    )
    mine = _insert(services, card, 2)
    _insert(services, other, 2)

    def by_code(code_type: str, code: str) -> list[int]:
        return _ids(_history(client, office, filter={"codeType": code_type, "code": code}))

    # then each live code finds its card's transactions, written as a customer would type it
    assert by_code("PHYSICAL", CODE) == mine
    assert by_code("PHYSICAL", "hist-phys 0001") == mine
    assert by_code("EXTERNAL", "HISTEXTN0001") == mine
    # and a code of another type, a revoked code or an unknown code finds nothing
    assert by_code("EXTERNAL", CODE) == []
    assert by_code("EXTERNAL", "REVOKEDEXT01") == []
    assert by_code("PHYSICAL", "NOSUCHCODE01") == []


@pytest.mark.parametrize(
    ("code_filter", "field"),
    [
        ({"code": CODE}, "codeType"),
        ({"codeType": "PHYSICAL"}, "code"),
        ({"codeType": "PHYSICAL", "code": "bad!"}, "code"),
    ],
    ids=["code-without-type", "type-without-code", "malformed"],
)
def test_bad_code_filters_are_refused(client, office, code_filter, field):
    assert _refused(client, office, filter=code_filter) == ("BAD_USER_INPUT", field)


def test_filtering_by_a_code_type_the_caller_may_not_use_is_forbidden(client, mint, card, services):
    _insert(services, card, 1)
    token = mint(permissions=["ListGiftCardTransactions", "FindGiftCardByCode", "UsePhysicalGiftCardCodes"])
    refused = _refused(client, token, filter={"codeType": "EXTERNAL", "code": "HISTEXTN0001"})
    assert refused == ("FORBIDDEN", "codeType")
    assert _ids(_history(client, token, filter={"codeType": "PHYSICAL", "code": CODE})) != []


def test_filtering_by_code_needs_find_gift_card_by_code(client, mint, card, services):
    # given a card with history, and a token that may use its code type but not find cards by code
    _insert(services, card, 1)
    token = mint(permissions=["ListGiftCardTransactions", "UsePhysicalGiftCardCodes"])
    # then a code filter is refused, however it is given
    for code_filter in ({"codeType": "PHYSICAL", "code": CODE}, {"code": CODE}, {"codeType": "PHYSICAL"}):
        assert _refused(client, token, filter=code_filter) == ("FORBIDDEN", "code")
    # while with FindGiftCardByCode it finds the card's transactions
    finder = mint(permissions=["ListGiftCardTransactions", "FindGiftCardByCode", "UsePhysicalGiftCardCodes"])
    assert _ids(_history(client, finder, filter={"codeType": "PHYSICAL", "code": CODE})) != []


def test_filtering_by_member_needs_list_gift_cards(client, mint, card, services):
    # given a member's card with history, and a token that reads history but may not list cards
    entries = _insert(services, card, 1)
    token = mint(permissions=["ListGiftCardTransactions", "FindGiftCardByCode", "UsePhysicalGiftCardCodes"])
    # then filtering by member is refused, as `giftcard(memberId:)` is
    assert _refused(client, token, filter={"memberId": "M1"}) == ("FORBIDDEN", "memberId")
    assert _refused(client, token, filter={"memberId": "M1", "giftcardId": str(card)}) == (
        "FORBIDDEN",
        "memberId",
    )
    # while the unfiltered history and a card id filter (ids are on every row) stay open to it
    assert _ids(_history(client, token)) == entries
    assert _ids(_history(client, token, filter={"giftcardId": str(card)})) == entries
    # and with ListGiftCards the member filter works
    lister = mint(permissions=["ListGiftCardTransactions", "ListGiftCards"])
    assert _ids(_history(client, lister, filter={"memberId": "M1"})) == entries


def test_filter_by_status_and_type(client, office, card):
    # given a funded card with a completed debit, an open hold and a cancelled one
    funded = _trans(client, office, card, "10.00")
    spent = _trans(client, office, card, "-1.00")
    held = _trans(client, office, card, "-2.00", authorizeOnly=True)
    cancelled = _trans(client, office, card, "-3.00", authorizeOnly=True)
    gql(client, CANCEL, {"id": cancelled["id"]}, token=office)
    ids = {
        name: int(entry["id"])
        for name, entry in (("funded", funded), ("spent", spent), ("held", held), ("cancelled", cancelled))
    }
    cases = [
        ({"status": "COMPLETED"}, ["funded", "spent"]),
        ({"status": "AUTHORIZED"}, ["held"]),
        ({"status": "CANCELLED"}, ["cancelled"]),
        ({"transType": "ADD"}, ["funded"]),
        ({"transType": "USE"}, ["spent", "held", "cancelled"]),
        ({"transType": "USE", "status": "COMPLETED"}, ["spent"]),
        ({"transType": "IMPORT"}, []),
    ]
    for flt, expected in cases:
        assert _ids(_history(client, office, filter=flt)) == [ids[name] for name in expected], flt


def test_filter_by_source_and_reference(client, office, card):
    a = _trans(client, office, card, "5.00", sourceId="shop", refNo="ORDER-1")
    b = _trans(client, office, card, "-1.00", sourceId="shop", refNo="ORDER-2")
    c = _trans(client, office, card, "-1.00", sourceId="till", refNo="ORDER-1")
    assert _ids(_history(client, office, filter={"sourceId": "shop"})) == [int(a["id"]), int(b["id"])]
    assert _ids(_history(client, office, filter={"refNo": "ORDER-1"})) == [int(a["id"]), int(c["id"])]
    both = _history(client, office, filter={"sourceId": "till", "refNo": "ORDER-1"})
    assert _ids(both) == [int(c["id"])]
    assert (both["edges"][0]["node"]["sourceId"], both["edges"][0]["node"]["refNo"]) == ("till", "ORDER-1")
    assert _history(client, office, filter={"refNo": "order-1"})["edges"] == []


@pytest.mark.parametrize("field", ["sourceId", "refNo"])
@pytest.mark.parametrize("value", ["x" * 129, "tab\there"])
def test_impossible_references_are_refused(client, office, field, value):
    assert _refused(client, office, filter={field: value}) == ("BAD_USER_INPUT", field)


def test_filter_by_creation_time(client, office, card, services):
    # given transactions made at known times
    times = [
        datetime(2024, 1, 1, tzinfo=UTC),
        datetime(2024, 6, 1, tzinfo=UTC),
        datetime(2024, 6, 1, 12, tzinfo=UTC),
        datetime(2025, 1, 1, tzinfo=UTC),
    ]
    entries = _insert(services, card, len(times))
    for entry_id, created_at in zip(entries, times, strict=True):
        _set_entry(services, entry_id, created_at=created_at)
    # then createdAfter is inclusive, createdBefore exclusive, and any offset means the same instant
    cases = [
        ({"createdAfter": "2024-06-01T00:00:00Z"}, entries[1:]),
        ({"createdBefore": "2024-06-01T00:00:00Z"}, entries[:1]),
        ({"createdAfter": "2024-06-01T00:00:00Z", "createdBefore": "2024-06-01T12:00:00Z"}, entries[1:2]),
        ({"createdAfter": "2024-06-01T14:00:00+02:00"}, entries[2:]),
        ({"createdAfter": "2024-06-01T14:00:01+02:00", "createdBefore": "2025-01-01T00:00:00Z"}, []),
        ({"createdBefore": "2024-06-01T03:00:01+03:00"}, entries[:2]),
    ]
    for created, expected in cases:
        assert _ids(_history(client, office, filter=created)) == expected, created


@pytest.mark.parametrize(
    ("created", "field"),
    [
        ({"createdAfter": "2024-06-01T00:00:00"}, "createdAfter"),
        ({"createdBefore": "2024-06-01T00:00:00"}, "createdBefore"),
        ({"createdAfter": "2024-06-01T00:00:00Z", "createdBefore": "2024-06-01T00:00:00Z"}, "createdBefore"),
    ],
    ids=["after-without-zone", "before-without-zone", "empty-range"],
)
def test_bad_creation_ranges_are_refused(client, office, created, field):
    assert _refused(client, office, filter=created) == ("BAD_USER_INPUT", field)


def test_filters_combine_and_page(client, office, card, seed, services):
    other = seed({CodeType.PHYSICAL: "OTHERPHYS001"}, member_id="M1")
    wanted = _insert(services, card, 5, trans_type="ADJUST")
    _insert(services, card, 3)  # IMPORT
    _insert(services, other, 3, trans_type="ADJUST")
    flt = {"memberId": "M1", "giftcardId": str(card), "transType": "ADJUST", "status": "COMPLETED"}
    page = _history(client, office, first=3, filter=flt)
    assert _ids(page) == wanted[:3] and page["pageInfo"]["hasNextPage"] is True
    page = _history(client, office, first=3, filter=flt, after=page["pageInfo"]["endCursor"])
    assert _ids(page) == wanted[3:] and page["pageInfo"]["hasNextPage"] is False


# --- permissions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("roles", "permissions", "expected"),
    [
        (None, None, "UNAUTHENTICATED"),
        (["pos"], ["ListGiftCards"], "FORBIDDEN"),
        ([], ["UsePhysicalGiftCardCodes", "UseExternalGiftCardCodes"], "FORBIDDEN"),
    ],
    ids=["anonymous", "pos-with-ListGiftCards", "without-ListGiftCardTransactions"],
)
def test_history_needs_list_gift_card_transactions(
    client, mint, card, services, roles, permissions, expected
):
    _insert(services, card, 1)
    token = None if roles is None else mint(roles=roles, permissions=permissions)
    # refused before any argument is looked at
    assert _refused(client, token, first=1000)[0] == expected
    assert _refused(client, token, filter={"codeType": "PHYSICAL", "code": CODE})[0] == expected
    assert _refused(client, token)[0] == expected


# --- rows -----------------------------------------------------------------------------------------


def test_rows_show_the_balance_before_and_after(client, office, card):
    _trans(client, office, card, "10.00")
    _trans(client, office, card, "-2.50", sourceId="till-1", refNo="R1")
    first, second = (edge["node"] for edge in _history(client, office)["edges"])
    assert first == {
        "id": first["id"],
        "giftcardId": str(card),
        "transType": "ADD",
        "status": "COMPLETED",
        "amount": "10.00",
        "currency": "USD",
        "balance": "10.00",
        "availableBalance": None,
        "balanceBefore": "0.00",
        "balanceAfter": "10.00",
        "sourceId": None,
        "refNo": None,
    }
    assert (second["amount"], second["balanceBefore"], second["balanceAfter"], second["balance"]) == (
        "-2.50",
        "10.00",
        "7.50",
        "7.50",
    )
    assert (second["sourceId"], second["refNo"], second["availableBalance"]) == ("till-1", "R1", None)


def test_balances_follow_on_from_row_to_row(client, office, card):
    # given a mix of immediate transactions, with holds (open, cancelled, captured) among them
    _trans(client, office, card, "20.00")
    _trans(client, office, card, "-3.10")
    open_hold = _trans(client, office, card, "-5.00", authorizeOnly=True)
    _trans(client, office, card, "4.00", trans_type="ADJUST")
    cancelled = _trans(client, office, card, "-1.00", authorizeOnly=True)
    gql(client, CANCEL, {"id": cancelled["id"]}, token=office)
    _trans(client, office, card, "-0.90")
    _trans(client, office, card, "-7.00", allowPartial=True)
    # when the whole history is read two rows at a time
    rows, after = [], None
    while True:
        page = _history(client, office, first=2, after=after, filter={"giftcardId": str(card)})
        rows += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    # then each completed row starts where the previous completed one ended, and adds its amount
    completed = [row for row in rows if row["status"] == "COMPLETED"]
    assert len(completed) == 5 and open_hold["id"] not in [row["id"] for row in completed]
    previous = "0.00"
    for row in completed:
        assert row["balanceBefore"] == previous, row
        cents = round(float(row["balanceBefore"]) * 100) + round(float(row["amount"]) * 100)
        assert round(float(row["balanceAfter"]) * 100) == cents
        previous = row["balanceAfter"]
    # and the last one ends at the card's balance
    assert _card(client, office, card)["balance"] == previous == "13.00"


# --- the balance check on a card ------------------------------------------------------------------


def test_an_open_debit_hold_lowers_the_available_balance(client, office, card):
    # given a $10 card
    _trans(client, office, card, "10.00")
    assert (_card(client, office, card)["balance"], _card(client, office, card)["availableBalance"]) == (
        "10.00",
        "10.00",
    )
    # when $1 is authorized
    held = _trans(client, office, card, "-1.00", authorizeOnly=True)
    checked = _card(client, office, card)
    # then the card shows $9 available of $10, and the hold among its open authorizations
    assert (checked["availableBalance"], checked["balance"]) == ("9.00", "10.00")
    assert [(a["id"], a["status"], a["amount"]) for a in checked["openAuthorizations"]] == [
        (held["id"], "AUTHORIZED", "-1.00")
    ]
    # and once captured, $9 of $9 and no open authorization
    gql(client, CAPTURE, {"id": held["id"]}, token=office)
    checked = _card(client, office, card)
    assert (checked["availableBalance"], checked["balance"], checked["openAuthorizations"]) == (
        "9.00",
        "9.00",
        [],
    )


def test_an_authorized_credit_is_open_but_adds_nothing_yet(client, office, card):
    _trans(client, office, card, "10.00")
    credit = _trans(client, office, card, "1.00", authorizeOnly=True)
    checked = _card(client, office, card)
    assert (checked["availableBalance"], checked["balance"]) == ("10.00", "10.00")
    assert [a["id"] for a in checked["openAuthorizations"]] == [credit["id"]]
    gql(client, CAPTURE, {"id": credit["id"]}, token=office)
    checked = _card(client, office, card)
    assert (checked["availableBalance"], checked["balance"]) == ("11.00", "11.00")


def test_an_expired_hold_no_longer_counts(client, office, card, services):
    # given a $10 card with a $4 hold and a $1 hold, the $4 one past its expiry
    _trans(client, office, card, "10.00")
    expired = _trans(client, office, card, "-4.00", authorizeOnly=True)
    live = _trans(client, office, card, "-1.00", authorizeOnly=True)
    _set_entry(services, int(expired["id"]), hold_expires_at=datetime.now(UTC) - timedelta(seconds=1))
    # then only the live hold counts and is open
    checked = _card(client, office, card)
    assert (checked["availableBalance"], checked["balance"]) == ("9.00", "10.00")
    assert [a["id"] for a in checked["openAuthorizations"]] == [live["id"]]
    # while the history still lists the expired one, shown as EXPIRED
    assert _ids(_history(client, office, filter={"status": "AUTHORIZED"})) == [int(live["id"])]
    assert _ids(_history(client, office, filter={"status": "EXPIRED"})) == [int(expired["id"])]


def test_the_available_balance_needs_no_history_permission(client, mint, card, office):
    # given a $10 card with a $2.50 hold
    _trans(client, office, card, "10.00")
    _trans(client, office, card, "-2.50", authorizeOnly=True)
    # when a point of sale looks it up by code
    pos = mint(roles=["pos"])
    body = gql(
        client,
        """query { giftcard(code: "HISTPHYS0001", codeType: PHYSICAL) {
      results { balance availableBalance } } }""",
        token=pos,
    )
    # then it sees what the card can spend
    assert body["data"]["giftcard"]["results"] == [{"balance": "10.00", "availableBalance": "7.50"}]


def test_available_balance_costs_a_statement_only_when_asked_for(client, office, card, services):
    _trans(client, office, card, "10.00")
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(services.engine, "before_cursor_execute", count)
    try:
        costs = {}
        for fields in ("balance", "balance availableBalance"):
            statements.clear()
            body = gql(
                client,
                f"query($id: ID!) {{ giftcard(id: $id) {{ results {{ {fields} }} }} }}",
                {"id": str(card)},
                token=office,
            )
            assert "errors" not in body
            costs[fields] = len(statements)
    finally:
        event.remove(services.engine, "before_cursor_execute", count)
    assert costs["balance availableBalance"] == costs["balance"] + 1


@pytest.mark.parametrize("field", ["openAuthorizations { id }", "transactions { id }"])
def test_card_history_fields_need_list_gift_card_transactions(client, mint, card, field):
    # given a caller that may list cards but not read transactions
    token = mint(permissions=["ListGiftCards", "UsePhysicalGiftCardCodes"])
    body = gql(
        client,
        f"query($id: ID!) {{ giftcard(id: $id) {{ results {{ balance {field} }} }} }}",
        {"id": str(card)},
        token=token,
    )
    # then that field is refused, and the error points at it
    assert error_codes(body) == ["FORBIDDEN"]
    assert body["errors"][0]["path"][-1] == field.split()[0]
    assert "ListGiftCardTransactions" in body["errors"][0]["message"]
    # while the balance check itself is open to it
    body = gql(client, BALANCE, {"id": str(card)}, token=token)
    assert body["data"]["giftcard"]["results"] == [{"balance": "0.00", "availableBalance": "0.00"}]


def test_transactions_on_a_card_are_newest_first(client, office, card, seed, services):
    # given 12 transactions on the card and some on another
    entries = _insert(services, card, 12)
    _insert(services, seed({CodeType.PHYSICAL: "OTHERPHYS001"}), 3)
    # then the card lists its 10 newest by default, newest first, as history rows
    rows = _card(client, office, card)["transactions"]
    assert [int(row["id"]) for row in rows] == entries[::-1][:10]
    assert {row["availableBalance"] for row in rows} == {None}
    assert [int(row["id"]) for row in _card(client, office, card, first=3)["transactions"]] == entries[:-4:-1]
    assert [int(row["id"]) for row in _card(client, office, card, first=100)["transactions"]] == entries[::-1]


@pytest.mark.parametrize("first", [0, 101])
def test_transactions_on_a_card_take_1_to_100(client, office, card, first):
    body = gql(client, CARD, {"id": str(card), "first": first}, token=office)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "first"


def test_a_card_listing_shows_each_cards_balance_check(client, office, card, seed, services):
    other = seed({CodeType.PHYSICAL: "OTHERPHYS001"}, currency="JPY")
    _trans(client, office, card, "10.00")
    _trans(client, office, card, "-4.00", authorizeOnly=True)
    with transaction(services) as session:
        session.execute(update(GiftCard).where(GiftCard.id == other).values(balance=500, state="ACTIVE"))
    body = gql(client, "{ giftcards { edges { node { id balance availableBalance } } } }", token=office)
    assert [edge["node"] for edge in body["data"]["giftcards"]["edges"]] == [
        {"id": str(card), "balance": "10.00", "availableBalance": "6.00"},
        {"id": str(other), "balance": "500", "availableBalance": "500"},
    ]
