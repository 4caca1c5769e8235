"""The `giftcards` listing: page sizes, cursors stable under inserts, filters, masking, permissions,
and a constant number of SQL statements per page."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, update
from sqlmodel import col

from app.enums import CodeType
from app.models import GiftCard
from tests.conftest import error_codes, gql, transaction

LIST = """query List($first: Int, $after: String, $last: Int, $before: String, $orderBy: GiftCardOrder,
    $filter: GiftCardFilter) {
  giftcards(first: $first, after: $after, last: $last, before: $before, orderBy: $orderBy, filter: $filter) {
    limitedByPermission
    edges { cursor node { id memberId state codes { codeType code isMasked } } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  } }"""

PERSONAL = "ABCDEFGHJKLMNPQRSTUV"


def _list(client, token, **variables):
    body = gql(client, LIST, variables, token=token)
    assert "errors" not in body, body
    return body["data"]["giftcards"]


def _ids(page) -> list[int]:
    return [int(edge["node"]["id"]) for edge in page["edges"]]


def _refused(client, token, **variables) -> tuple[str, str | None]:
    body = gql(client, LIST, variables, token=token)
    assert body["data"] == {"giftcards": None}
    (code,) = error_codes(body)
    return code, body["errors"][0]["extensions"].get("field")


def _seed_many(seed, count: int, prefix: str = "CARD", **options) -> list[int]:
    return [seed({CodeType.PHYSICAL: f"{prefix}{i:08d}"}, **options) for i in range(count)]


def _set(services, card_id: int, **values) -> None:
    """Change a card straight in the database (state changes are another feature's mutations)."""
    with transaction(services) as session:
        session.execute(update(GiftCard).where(col(GiftCard.id) == card_id).values(**values))


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.fixture
def lister(mint):
    return mint(roles=["backoffice"])


# --- page size --------------------------------------------------------------------------------


def test_empty_listing(client, lister):
    page = _list(client, lister)
    assert page == {
        "limitedByPermission": False,
        "edges": [],
        "pageInfo": {"hasNextPage": False, "hasPreviousPage": False, "startCursor": None, "endCursor": None},
    }


def test_default_page_is_30_cards_oldest_first(client, lister, seed):
    # given 35 cards
    cards = _seed_many(seed, 35)
    # when listed without first
    page = _list(client, lister)
    # then the first 30 come, in creation order, with cursors that continue behind them
    assert _ids(page) == cards[:30]
    info = page["pageInfo"]
    assert (info["hasNextPage"], info["hasPreviousPage"]) == (True, False)
    assert info["startCursor"] == page["edges"][0]["cursor"]
    assert info["endCursor"] == page["edges"][-1]["cursor"]
    rest = _list(client, lister, after=info["endCursor"])
    assert _ids(rest) == cards[30:]
    assert (rest["pageInfo"]["hasNextPage"], rest["pageInfo"]["hasPreviousPage"]) == (False, True)


def test_at_most_100_cards_per_page(client, lister, seed):
    cards = _seed_many(seed, 101)
    page = _list(client, lister, first=100)
    assert _ids(page) == cards[:100]
    assert page["pageInfo"]["hasNextPage"] is True
    last = _list(client, lister, first=100, after=page["pageInfo"]["endCursor"])
    assert _ids(last) == cards[100:]
    assert last["pageInfo"]["hasNextPage"] is False


def test_a_page_that_ends_exactly_at_the_last_card_has_no_next_page(client, lister, seed):
    cards = _seed_many(seed, 5)
    page = _list(client, lister, first=5)
    assert _ids(page) == cards
    assert page["pageInfo"]["hasNextPage"] is False


@pytest.mark.parametrize("first", [101, 1000, 0, -1])
def test_page_sizes_out_of_range_are_refused_not_clamped(client, lister, seed, first):
    seed({CodeType.PHYSICAL: "CARD00000001"})
    assert _refused(client, lister, first=first) == ("BAD_USER_INPUT", "first")


# --- cursors ------------------------------------------------------------------------------------


def test_cursor_walk_is_stable_while_cards_are_added(client, lister, seed):
    # given 75 cards
    originals = _seed_many(seed, 75, "ORIG")
    added: list[int] = []
    seen: list[int] = []
    after = None
    # when a client walks the listing 20 at a time while 3 cards are created after every page
    for _ in range(20):
        page = _list(client, lister, first=20, after=after)
        seen += _ids(page)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        added += _seed_many(seed, 3, f"NEW{len(added):03d}")
    # then every card comes exactly once, the originals first and in order, the new ones at the end
    assert len(seen) == len(set(seen))
    assert seen[:75] == originals
    assert seen[75:] == added


def test_after_continues_behind_the_card_it_names(client, lister, seed):
    cards = _seed_many(seed, 6)
    first = _list(client, lister, first=2)
    page = _list(client, lister, first=2, after=first["edges"][1]["cursor"])
    assert _ids(page) == cards[2:4]
    assert page["pageInfo"]["hasPreviousPage"] is True


@pytest.mark.parametrize(
    "after",
    [
        "",
        "not a cursor!",
        "x" * 41,
        _cursor("gc:abc"),
        _cursor("gc:0"),
        _cursor("gc:007"),
        _cursor("gc:-1"),
        _cursor("id:5"),
        _cursor("gc:1") + "==",  # padded: another spelling of a real cursor
        base64.urlsafe_b64encode(b"gc:\xff").decode().rstrip("="),
        "Z2M6MR",  # decodes to gc:1 too, but is not how the server spells it
        _cursor("gc:" + "9" * 19),
    ],
)
def test_foreign_cursors_are_refused(client, lister, after):
    assert _refused(client, lister, after=after) == ("BAD_USER_INPUT", "after")


def test_a_cursor_past_the_last_card_is_an_empty_page(client, lister, seed):
    card_id = seed({CodeType.PHYSICAL: "CARD00000001"})
    page = _list(client, lister, after=_cursor(f"gc:{card_id + 1}"))
    assert page["edges"] == []
    assert page["pageInfo"]["hasNextPage"] is False


# --- filters ------------------------------------------------------------------------------------


def test_filter_by_state(client, lister, seed, services):
    pending = seed({CodeType.PHYSICAL: "PEND00000001"})
    active = seed({CodeType.PHYSICAL: "ACTV00000001"}, balance=100)
    blocked = seed({CodeType.PHYSICAL: "BLKD00000001"}, balance=100)
    _set(services, blocked, state="BLOCKED")
    for state, expected in (("PENDING", [pending]), ("ACTIVE", [active]), ("BLOCKED", [blocked])):
        page = _list(client, lister, filter={"state": state})
        assert _ids(page) == expected
        assert {edge["node"]["state"] for edge in page["edges"]} == {state}


def test_filter_by_member(client, lister, seed):
    mine = [seed({CodeType.PHYSICAL: f"MINE0000000{i}"}, member_id="C000000113") for i in range(3)]
    seed({CodeType.PHYSICAL: "THEIRS000001"}, member_id="C000000212")
    seed({CodeType.PHYSICAL: "NOBODY000001"})
    page = _list(client, lister, filter={"memberId": "C000000113"})
    assert _ids(page) == mine
    assert _list(client, lister, filter={"memberId": "C999"})["edges"] == []


@pytest.mark.parametrize("member_id", ["", "has space", "x" * 65])
def test_bad_member_ids_are_refused(client, lister, member_id):
    assert _refused(client, lister, filter={"memberId": member_id}) == ("BAD_USER_INPUT", "memberId")


def test_filter_by_live_code_type(client, lister, seed):
    # given cards with different codes, one of them with its EXTERNAL code revoked
    physical = seed({CodeType.PHYSICAL: "PHYS00000001"})
    external = seed({CodeType.EXTERNAL: "EXTN00000001"})
    both = seed({CodeType.PHYSICAL: "PHYS00000002", CodeType.EXTERNAL: "EXTN00000002"})
    revoked = seed(
        {CodeType.PHYSICAL: "PHYS00000003", CodeType.EXTERNAL: "EXTN00000003"}, revoked={CodeType.EXTERNAL}
    )
    # when filtered by code type, then only cards with a live code of that type come
    assert _ids(_list(client, lister, filter={"codeType": "EXTERNAL"})) == [external, both]
    assert _ids(_list(client, lister, filter={"codeType": "PHYSICAL"})) == [physical, both, revoked]
    assert _list(client, lister, filter={"codeType": "PERSONAL"})["edges"] == []


def test_filtering_by_a_code_type_the_caller_may_not_use_is_forbidden(client, mint, seed):
    seed({CodeType.EXTERNAL: "EXTN00000001"})
    token = mint(permissions=["ListGiftCards", "UsePhysicalGiftCardCodes"])
    assert _refused(client, token, filter={"codeType": "EXTERNAL"}) == ("FORBIDDEN", "codeType")


def test_filter_by_creation_time(client, lister, seed, services):
    # given cards created at known times
    times = [
        datetime(2024, 1, 1, tzinfo=UTC),
        datetime(2024, 6, 1, tzinfo=UTC),
        datetime(2024, 6, 1, 12, tzinfo=UTC),
        datetime(2025, 1, 1, tzinfo=UTC),
    ]
    cards = _seed_many(seed, len(times))
    for card_id, created_at in zip(cards, times, strict=True):
        _set(services, card_id, created_at=created_at)
    # then createdAfter is inclusive, createdBefore exclusive, and any offset means the same instant
    cases = [
        ({"createdAfter": "2024-06-01T00:00:00Z"}, cards[1:]),
        ({"createdBefore": "2024-06-01T00:00:00Z"}, cards[:1]),
        ({"createdAfter": "2024-06-01T00:00:00Z", "createdBefore": "2024-06-01T12:00:00Z"}, cards[1:2]),
        ({"createdAfter": "2024-06-01T13:00:00+02:00"}, cards[2:]),
        ({"createdAfter": "2024-06-01T14:00:00+02:00"}, cards[2:]),
        ({"createdAfter": "2024-06-01T14:00:01+02:00", "createdBefore": "2025-01-01T00:00:00Z"}, []),
        ({"createdBefore": "2024-06-01T03:00:00+03:00"}, cards[:1]),
        ({"createdBefore": "2024-06-01T03:00:01+03:00"}, cards[:2]),
    ]
    for created, expected in cases:
        assert _ids(_list(client, lister, filter=created)) == expected, created


@pytest.mark.parametrize(
    ("created", "field"),
    [
        ({"createdAfter": "2024-06-01T00:00:00"}, "createdAfter"),
        ({"createdBefore": "2024-06-01T00:00:00"}, "createdBefore"),
        ({"createdAfter": "2024-06-01T00:00:00Z", "createdBefore": "2024-06-01T00:00:00Z"}, "createdBefore"),
        ({"createdAfter": "2024-06-02T00:00:00Z", "createdBefore": "2024-06-01T00:00:00Z"}, "createdBefore"),
    ],
    ids=["after-without-zone", "before-without-zone", "empty-range", "reversed-range"],
)
def test_bad_creation_ranges_are_refused(client, lister, created, field):
    assert _refused(client, lister, filter=created) == ("BAD_USER_INPUT", field)


def test_deactivated_cards_are_left_out_unless_asked_for(client, lister, seed, services):
    # given three cards, the middle one deactivated
    cards = _seed_many(seed, 3)
    _set(services, cards[1], state="DEACTIVATED")
    # then the listing leaves it out by default ...
    assert _ids(_list(client, lister)) == [cards[0], cards[2]]
    assert _ids(_list(client, lister, filter={"includeDeactivated": False})) == [cards[0], cards[2]]
    # ... includes it with includeDeactivated ...
    assert _ids(_list(client, lister, filter={"includeDeactivated": True})) == cards
    # ... and lists only it when its state is asked for
    assert _ids(_list(client, lister, filter={"state": "DEACTIVATED"})) == [cards[1]]
    # while other filters still apply on top of includeDeactivated
    page = _list(client, lister, filter={"includeDeactivated": True, "state": "PENDING"})
    assert _ids(page) == [cards[0], cards[2]]


def test_filters_combine_and_page(client, lister, seed):
    theirs = [seed({CodeType.PHYSICAL: f"MEMB{i:08d}"}, member_id="C1") for i in range(5)]
    _seed_many(seed, 5, "OTHR")
    funded = seed({CodeType.PHYSICAL: "MEMB99999999"}, member_id="C1", balance=100)
    flt = {"memberId": "C1", "state": "PENDING", "codeType": "PHYSICAL"}
    page = _list(client, lister, first=3, filter=flt)
    assert _ids(page) == theirs[:3] and page["pageInfo"]["hasNextPage"] is True
    page = _list(client, lister, first=3, filter=flt, after=page["pageInfo"]["endCursor"])
    assert _ids(page) == theirs[3:] and page["pageInfo"]["hasNextPage"] is False
    assert funded not in _ids(page)


# --- masking --------------------------------------------------------------------------------------


def test_codes_are_masked_as_in_lookups(client, mint, seed):
    # given a card with a PHYSICAL, a PERSONAL and an EXTERNAL code
    seed(
        {CodeType.PHYSICAL: "PHYS00001111", CodeType.PERSONAL: PERSONAL, CodeType.EXTERNAL: "EXTN00002222"},
        member_id="C1",
    )
    # when a storefront-like caller that may also list cards lists them
    page = _list(client, mint(roles=["storefront"], permissions=["ListGiftCards"]))
    # then PHYSICAL is shown, PERSONAL masked, EXTERNAL left out, and the page says it was limited
    (edge,) = page["edges"]
    assert edge["node"]["codes"] == [
        {"codeType": "PHYSICAL", "code": "PHYS00001111", "isMasked": False},
        {"codeType": "PERSONAL", "code": "****************STUV", "isMasked": True},
    ]
    assert page["limitedByPermission"] is True
    # and an admin sees every code in full
    page = _list(client, mint(roles=["admin"]))
    assert page["edges"][0]["node"]["codes"] == [
        {"codeType": "PHYSICAL", "code": "PHYS00001111", "isMasked": False},
        {"codeType": "PERSONAL", "code": PERSONAL, "isMasked": False},
        {"codeType": "EXTERNAL", "code": "EXTN00002222", "isMasked": False},
    ]
    assert page["limitedByPermission"] is False


def test_limited_by_permission_describes_the_page(client, mint, seed):
    # given a card with only a PHYSICAL code, then one with a PERSONAL code
    seed({CodeType.PHYSICAL: "PHYS00001111"})
    seed({CodeType.PERSONAL: PERSONAL}, member_id="C1")
    token = mint(roles=["storefront"], permissions=["ListGiftCards"])
    # then the page holding only the first card is not limited, the next one is
    first = _list(client, token, first=1)
    assert first["limitedByPermission"] is False
    second = _list(client, token, first=1, after=first["pageInfo"]["endCursor"])
    assert second["limitedByPermission"] is True


def test_revoked_codes_are_not_listed(client, lister, seed):
    seed({CodeType.PHYSICAL: "REVOKED00001", CodeType.EXTERNAL: "LIVE00000001"}, revoked={CodeType.PHYSICAL})
    (edge,) = _list(client, lister)["edges"]
    assert [code["code"] for code in edge["node"]["codes"]] == ["LIVE00000001"]


# --- permissions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("roles", "permissions", "expected"),
    [
        (None, None, "UNAUTHENTICATED"),
        (["storefront"], [], "FORBIDDEN"),
        ([], ["UsePhysicalGiftCardCodes", "CreateGiftCard", "EditGiftCard"], "FORBIDDEN"),
    ],
    ids=["anonymous", "storefront", "without-ListGiftCards"],
)
def test_listing_needs_list_gift_cards(client, mint, seed, roles, permissions, expected):
    seed({CodeType.PHYSICAL: "CARD00000001"})
    token = None if roles is None else mint(roles=roles, permissions=permissions)
    # refused before any argument is looked at
    assert _refused(client, token, first=1000)[0] == expected
    assert _refused(client, token)[0] == expected


# --- statements -----------------------------------------------------------------------------------


def test_a_page_costs_two_statements_whatever_its_size(client, seed, services, mint):
    # given 100 cards with three codes each
    for i in range(100):
        seed(
            {
                CodeType.PHYSICAL: f"PHYS{i:08d}",
                CodeType.EXTERNAL: f"EXTN{i:08d}",
                CodeType.PERSONAL: f"{i:04d}" + PERSONAL[4:],
            },
            member_id=f"C{i}",
        )
    token = mint(roles=["admin"])
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(services.engine, "before_cursor_execute", count)
    try:
        # when pages of 10 and of 100 cards are listed
        sizes, audited = {}, {}
        for first in (10, 100):
            statements.clear()
            page = _list(client, token, first=first)
            sizes[first] = sum(statement.startswith("SELECT") for statement in statements)
            audited[first] = sum("audit_events" in statement for statement in statements)
            assert len(page["edges"]) == first
            assert all(len(edge["node"]["codes"]) == 3 for edge in page["edges"])
        # and pages behind a cursor (they also tell whether cards come before them), either way,
        # in either order; a code filter, which first finds the code's card
        cursor = page["edges"][50]["cursor"]
        newest = _list(client, token, first=1, orderBy="CREATED_DESC")["edges"][0]["cursor"]
        others = {}
        for name, variables in {
            "after": {"first": 10, "after": cursor},
            "before": {"last": 10, "before": cursor},
            "last": {"last": 10},
            "newest first, after": {"first": 10, "after": newest, "orderBy": "CREATED_DESC"},
            "newest first, before": {"last": 10, "before": newest, "orderBy": "CREATED_DESC"},
            "code": {"filter": {"code": "PHYS00000007"}},
            "unknown code": {"filter": {"code": "NONE00000007"}},
        }.items():
            statements.clear()
            page = _list(client, token, **variables)
            assert page["edges"] or name in ("unknown code", "newest first, before"), name
            others[name] = sum(statement.startswith("SELECT") for statement in statements)
    finally:
        event.remove(services.engine, "before_cursor_execute", count)
    # then each read with the same two statements: the cards, then their codes; and the audit
    # trail recorded the PERSONAL codes shown in full with one insert, also whatever the page size
    assert sizes == {10: 2, 100: 2}
    assert audited == {10: 1, 100: 1}
    # a code filter costs one statement more (none after it when the code is unknown)
    assert others == {
        "after": 2,
        "before": 2,
        "last": 2,
        "newest first, after": 2,
        "newest first, before": 1,  # an empty page: no codes to read
        "code": 3,
        "unknown code": 1,
    }
