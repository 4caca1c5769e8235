"""The `giftcards` listing paged both ways (first/after, last/before) in both orders (orderBy):
exact pages and pageInfo at every step, cursors passed back the other way, and the refusals."""

from __future__ import annotations

import pytest
from sqlalchemy import update
from sqlmodel import col

from app.enums import CodeType
from app.models import GiftCard
from tests.conftest import error_codes, gql, transaction

LIST = """query List($first: Int, $after: String, $last: Int, $before: String, $orderBy: GiftCardOrder,
    $filter: GiftCardFilter) {
  giftcards(first: $first, after: $after, last: $last, before: $before, orderBy: $orderBy, filter: $filter) {
    edges { cursor node { id } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  } }"""


def _list(client, token, **variables):
    body = gql(client, LIST, variables, token=token)
    assert "errors" not in body, body
    return body["data"]["giftcards"]


def _refused(client, token, **variables) -> tuple[str, str | None]:
    body = gql(client, LIST, variables, token=token)
    assert body["data"] == {"giftcards": None}
    (code,) = error_codes(body)
    return code, body["errors"][0]["extensions"].get("field")


def _ids(page) -> list[int]:
    return [int(edge["node"]["id"]) for edge in page["edges"]]


def _flags(page) -> tuple[bool, bool]:
    return page["pageInfo"]["hasPreviousPage"], page["pageInfo"]["hasNextPage"]


def _cursors_match(page) -> None:
    """startCursor and endCursor are the first and last edges' cursors (null on an empty page)."""
    cursors = [edge["cursor"] for edge in page["edges"]] or [None]
    assert (page["pageInfo"]["startCursor"], page["pageInfo"]["endCursor"]) == (cursors[0], cursors[-1])


@pytest.fixture
def lister(mint):
    return mint(roles=["backoffice"])


@pytest.fixture
def cards(seed) -> list[int]:
    return [seed({CodeType.PHYSICAL: f"CARD{i:08d}"}) for i in range(7)]


@pytest.mark.parametrize("order", [None, "CREATED_DESC"])  # None: the default, oldest first
def test_seven_cards_walked_forward_and_backward_three_at_a_time(client, lister, cards, order):
    listed = cards[::-1] if order == "CREATED_DESC" else cards
    assert listed == (sorted(cards, reverse=True) if order == "CREATED_DESC" else sorted(cards))
    walk = []
    # forward: first 3, then after each page's endCursor
    page = _list(client, lister, first=3, orderBy=order)
    walk.append((_ids(page), _flags(page)))
    forward_cursors = [edge["cursor"] for edge in page["edges"]]
    for _ in range(2):
        page = _list(client, lister, first=3, after=page["pageInfo"]["endCursor"], orderBy=order)
        _cursors_match(page)
        walk.append((_ids(page), _flags(page)))
        forward_cursors += [edge["cursor"] for edge in page["edges"]]
    # (ids, (hasPreviousPage, hasNextPage))
    assert walk == [
        (listed[0:3], (False, True)),
        (listed[3:6], (True, True)),
        (listed[6:7], (True, False)),
    ]
    # backward: last 3, then before each page's startCursor; edges stay in the listing's order
    walk, backward_cursors = [], []
    page = _list(client, lister, last=3, orderBy=order)
    walk.append((_ids(page), _flags(page)))
    backward_cursors = [edge["cursor"] for edge in page["edges"]]
    for _ in range(2):
        page = _list(client, lister, last=3, before=page["pageInfo"]["startCursor"], orderBy=order)
        _cursors_match(page)
        walk.append((_ids(page), _flags(page)))
        backward_cursors = [edge["cursor"] for edge in page["edges"]] + backward_cursors
    assert walk == [
        (listed[4:7], (True, False)),
        (listed[1:4], (True, True)),
        (listed[0:1], (False, True)),
    ]
    # a card has the same cursor whichever way it was reached
    assert backward_cursors == forward_cursors
    assert len(set(forward_cursors)) == 7


@pytest.mark.parametrize("order", ["CREATED_ASC", "CREATED_DESC"])
def test_a_cursor_is_passed_back_the_other_way(client, lister, cards, order):
    listed = cards[::-1] if order == "CREATED_DESC" else cards
    middle = _list(
        client,
        lister,
        first=3,
        after=_list(client, lister, first=3, orderBy=order)["pageInfo"]["endCursor"],
        orderBy=order,
    )
    assert _ids(middle) == listed[3:6]
    # before the middle page's start: the page before it, from the listing's start
    back = _list(client, lister, last=3, before=middle["pageInfo"]["startCursor"], orderBy=order)
    assert (_ids(back), _flags(back)) == (listed[0:3], (False, True))
    # before its end: the two cards before it and its first
    back = _list(client, lister, last=3, before=middle["pageInfo"]["endCursor"], orderBy=order)
    assert (_ids(back), _flags(back)) == (listed[2:5], (True, True))
    # after a backward page's end: what follows it
    ahead = _list(client, lister, first=3, after=back["pageInfo"]["endCursor"], orderBy=order)
    assert (_ids(ahead), _flags(ahead)) == (listed[5:7], (True, False))


def test_pages_beyond_either_end_are_empty_and_say_what_lies_behind(client, lister, cards):
    ends = _list(client, lister, first=1), _list(client, lister, last=1)
    first_cursor, last_cursor = ends[0]["pageInfo"]["startCursor"], ends[1]["pageInfo"]["endCursor"]
    after_last = _list(client, lister, first=3, after=last_cursor)
    assert (_ids(after_last), _flags(after_last)) == ([], (True, False))
    _cursors_match(after_last)
    before_first = _list(client, lister, last=3, before=first_cursor)
    assert (_ids(before_first), _flags(before_first)) == ([], (False, True))
    _cursors_match(before_first)
    # a whole listing in one page either way
    assert _flags(_list(client, lister, first=7)) == (False, False)
    assert _flags(_list(client, lister, last=7)) == (False, False)
    assert _ids(_list(client, lister, last=100)) == cards
    # before alone: the 30 (here all 6) cards before it
    assert _ids(_list(client, lister, before=last_cursor)) == cards[:6]


def test_has_previous_page_counts_only_cards_the_filter_lists(client, lister, cards, services):
    # given the first two cards deactivated (left out of the listing)
    with transaction(services) as session:
        session.execute(update(GiftCard).where(col(GiftCard.id).in_(cards[:2])).values(state="DEACTIVATED"))
    listed = _list(client, lister, first=2)
    assert _ids(listed) == cards[2:4]
    # when paging on behind the cursor of a card that is listed, and of one that is not
    second = _list(client, lister, first=2, after=listed["pageInfo"]["startCursor"])
    cursor_of_deactivated = _list(client, lister, first=1, filter={"includeDeactivated": True})
    behind_deactivated = _list(client, lister, first=2, after=cursor_of_deactivated["pageInfo"]["endCursor"])
    # then only a listed card before the page makes hasPreviousPage true
    assert (_ids(second), _flags(second)) == (cards[3:5], (True, True))
    assert (_ids(behind_deactivated), _flags(behind_deactivated)) == (cards[2:4], (False, True))
    # and backward alike: before the cursor of the third card nothing is listed
    before = _list(client, lister, last=2, before=listed["pageInfo"]["startCursor"])
    assert (_ids(before), _flags(before)) == ([], (False, True))
    with_deactivated = _list(
        client,
        lister,
        last=2,
        before=listed["pageInfo"]["startCursor"],
        filter={"includeDeactivated": True},
    )
    assert (_ids(with_deactivated), _flags(with_deactivated)) == (cards[:2], (False, True))


# Refused before the database is asked: one database is enough.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_mixed_directions_sizes_and_cursors_are_refused(client, lister):
    refusals: dict[str, list[dict[str, int | str]]] = {
        "last": [{"first": 3, "last": 3}, {"last": 0}, {"last": 101}, {"last": -1}],
        "before": [
            {"after": "Z2M6MQ", "before": "Z2M6Mg"},  # gc:1, gc:2
            {"first": 3, "before": "Z2M6Mg"},
            {"before": "not a cursor"},
            {"last": 2, "before": "Z3Q6MQ"},  # the history's gt:1
        ],
        "after": [{"last": 3, "after": "Z2M6MQ"}, {"after": "bm9wZQ"}],
    }
    for field, cases in refusals.items():
        for variables in cases:
            assert _refused(client, lister, **variables) == ("BAD_USER_INPUT", field), variables


def test_a_cursor_is_valid_only_with_the_order_it_came_from(client, lister, cards):
    newest = _list(client, lister, first=2, orderBy="CREATED_DESC")
    oldest = _list(client, lister, first=2)
    for cursor in (newest["pageInfo"]["endCursor"], newest["pageInfo"]["startCursor"]):
        assert _refused(client, lister, after=cursor) == ("BAD_USER_INPUT", "after")
        assert _refused(client, lister, before=cursor, orderBy="CREATED_ASC") == ("BAD_USER_INPUT", "before")
    assert _refused(client, lister, after=oldest["pageInfo"]["endCursor"], orderBy="CREATED_DESC") == (
        "BAD_USER_INPUT",
        "after",
    )
    # null is the default order, whose cursors it takes
    assert (
        _ids(_list(client, lister, first=2, after=oldest["pageInfo"]["startCursor"], orderBy=None))
        == cards[1:3]
    )
    assert _ids(_list(client, lister, first=2, orderBy="CREATED_ASC")) == cards[:2]
    # the same card has a different cursor in each order
    assert newest["edges"][0]["node"]["id"] == str(cards[-1])
    assert newest["edges"][0]["cursor"] != _list(client, lister, last=1)["edges"][0]["cursor"]
