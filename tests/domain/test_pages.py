"""Pages of a listing: opaque cursors, their refusals, checked page sizes and created ranges
(plain values, no database)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.domain.identifiers import MAX_CARD_ID
from app.domain.pages import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Edge,
    Page,
    PageRequest,
    created_range,
    decode_cursor,
    edges,
    encode_cursor,
    in_listing_order,
    page_request,
    page_size,
)
from app.errors import BadUserInputError

NOT_A_CURSOR = "after: not a cursor of this listing"
AFTER = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Item:
    id: int


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _refused(cursor: str, prefix: str = "gc:") -> None:
    with pytest.raises(BadUserInputError) as caught:
        decode_cursor(cursor, prefix)
    assert (caught.value.message, caught.value.field) == (NOT_A_CURSOR, "after")


# --- cursors -----------------------------------------------------------------------------------


def test_a_cursor_is_the_unpadded_urlsafe_base64_of_prefix_and_id():
    # Clients keep cursors between requests: their spelling is part of the API.
    assert encode_cursor(1, "gc:") == "Z2M6MQ"
    assert encode_cursor(2**31 - 1, "gt:") == "Z3Q6MjE0NzQ4MzY0Nw"


@pytest.mark.parametrize("item_id", [1, 9, 10, 123456, MAX_CARD_ID])
@pytest.mark.parametrize("prefix", ["gc:", "gt:", "ga:"])
def test_a_cursor_decodes_to_the_id_it_was_made_from(item_id, prefix):
    assert decode_cursor(encode_cursor(item_id, prefix), prefix) == item_id


@pytest.mark.parametrize(("made_for", "read_by"), [("gt:", "gc:"), ("gc:", "ga:"), ("ga:", "gt:")])
def test_a_cursor_of_another_listing_is_refused(made_for, read_by):
    _refused(encode_cursor(5, made_for), read_by)


@pytest.mark.parametrize(
    "cursor",
    [
        "",  # nothing
        "Z2M6MQ==",  # padded: a second spelling of the same cursor
        "Z2M6M Q",  # a space
        "Z2M6+Q",  # the standard alphabet's + and /, not the URL-safe one
        "Z2M6/Q",
        "A" * 41,  # longer than any cursor of an id
        "A",  # not base64 at all (one character cannot hold a byte)
        _b64("gc:1").replace("Q", "R"),  # trailing bits set: decodes to gc:1 but is not its spelling
        base64.urlsafe_b64encode(b"gc:\xff1").decode().rstrip("="),  # not ASCII
    ],
)
def test_garbled_cursors_are_refused(cursor):
    _refused(cursor)


@pytest.mark.parametrize(
    "payload",
    ["gc:", "gc:0", "gc:01", "gc:-1", "gc:+1", "gc:1x", "gc: 1", "gc:" + "9" * 19, "GC:1", "xgc:1"],
)
def test_a_cursor_must_hold_the_prefix_and_a_plain_positive_id(payload):
    _refused(_b64(payload))


def test_an_id_beyond_the_64_bit_columns_is_refused():
    assert decode_cursor(_b64(f"gc:{MAX_CARD_ID}"), "gc:") == MAX_CARD_ID
    _refused(_b64(f"gc:{MAX_CARD_ID + 1}"))
    _refused(_b64("gc:" + "9" * 19))  # the longest id the pattern allows, still too large


def test_edges_carry_the_cursor_that_continues_behind_each_item():
    items = [Item(3), Item(8)]
    assert edges(items, "gt:") == (
        Edge(encode_cursor(3, "gt:"), Item(3)),
        Edge(encode_cursor(8, "gt:"), Item(8)),
    )


def test_a_page_names_the_cursors_at_its_two_ends():
    page = Page(edges([Item(3), Item(5), Item(8)], "gc:"), has_next_page=True, has_previous_page=False)
    assert page.start_cursor == encode_cursor(3, "gc:")
    assert page.end_cursor == encode_cursor(8, "gc:")


def test_an_empty_page_has_no_cursors():
    page: Page[Item] = Page((), has_next_page=False, has_previous_page=True)
    assert (page.start_cursor, page.end_cursor) == (None, None)


# --- page sizes --------------------------------------------------------------------------------


def test_a_page_size_left_out_is_the_default():
    assert page_size(None, "cards") == DEFAULT_PAGE_SIZE == 30
    assert page_size(None, "transactions", default=10) == 10


@pytest.mark.parametrize("first", [1, 2, 99, MAX_PAGE_SIZE])
def test_a_page_size_within_the_bounds_is_taken_as_given(first):
    assert page_size(first, "cards") == first


@pytest.mark.parametrize("first", [0, -1, MAX_PAGE_SIZE + 1, 1000])
def test_a_page_size_outside_the_bounds_is_refused_not_clamped(first):
    with pytest.raises(BadUserInputError) as caught:
        page_size(first, "events")
    assert (caught.value.message, caught.value.field) == ("first: give 1 to 100 events per page", "first")


def test_the_default_is_held_to_the_same_bounds():
    with pytest.raises(BadUserInputError):
        page_size(None, "cards", default=MAX_PAGE_SIZE + 1)


# --- created ranges ----------------------------------------------------------------------------


def test_no_range_is_no_condition():
    assert created_range(None, None) == (None, None)


def test_either_end_alone_is_kept_in_utc():
    plus_two = timezone(timedelta(hours=2))
    start = datetime(2026, 1, 1, 2, 0, tzinfo=plus_two)
    assert created_range(start, None) == (AFTER, None)
    assert created_range(None, start) == (None, AFTER)
    after, before = created_range(start, start + timedelta(seconds=1))
    assert after is not None and after.tzinfo is UTC and after == AFTER
    assert before == AFTER + timedelta(seconds=1)


@pytest.mark.parametrize("before", [AFTER, AFTER - timedelta(microseconds=1)])
def test_an_end_not_after_the_start_is_refused_naming_the_end(before):
    with pytest.raises(BadUserInputError) as caught:
        created_range(AFTER, before)
    assert (caught.value.message, caught.value.field) == (
        "created_before: must be later than created_after",
        "created_before",
    )


def test_the_range_compares_moments_not_wall_clocks():
    # 01:30 at UTC+2 is earlier than 00:00 UTC.
    before = datetime(2026, 1, 1, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    with pytest.raises(BadUserInputError):
        created_range(AFTER, before)


def test_errors_name_the_fields_the_listing_gives():
    names = ("occurred_after", "occurred_before")
    with pytest.raises(BadUserInputError) as caught:
        created_range(AFTER, AFTER, names)
    assert (caught.value.message, caught.value.field) == (
        "occurred_before: must be later than occurred_after",
        "occurred_before",
    )
    with pytest.raises(BadUserInputError) as naive:
        created_range(datetime(2026, 1, 1), None, names)
    assert naive.value.field == "occurred_after"
    with pytest.raises(BadUserInputError) as naive_end:
        created_range(None, datetime(2026, 1, 1), names)
    assert (naive_end.value.message, naive_end.value.field) == (
        "occurred_before: give a time zone (e.g. 2027-01-01T00:00:00Z)",
        "occurred_before",
    )


# --- both ways ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "request_"),
    [
        ((None, None, None, None), PageRequest(30)),
        ((5, _b64("gc:7"), None, None), PageRequest(5, 7)),
        ((None, None, 5, None), PageRequest(5, None, backward=True)),
        ((None, None, 5, _b64("gc:7")), PageRequest(5, 7, backward=True)),
        ((None, None, None, _b64("gc:7")), PageRequest(30, 7, backward=True)),
    ],
    ids=["neither", "forward", "last", "backward", "before alone"],
)
def test_a_page_request_pages_forward_or_backward(arguments, request_):
    first, after, last, before = arguments
    assert page_request(first, after, last, before, "cards", "gc:") == request_


@pytest.mark.parametrize(
    ("arguments", "message", "field"),
    [
        ((1, None, 1, None), "last: not together with first", "last"),
        ((None, _b64("gc:1"), None, _b64("gc:2")), "before: not together with after", "before"),
        ((1, None, None, _b64("gc:2")), "before: not together with first", "before"),
        ((None, _b64("gc:1"), 1, None), "after: not together with last", "after"),
        ((None, None, 0, None), "last: give 1 to 100 cards per page", "last"),
        ((None, None, 101, None), "last: give 1 to 100 cards per page", "last"),
        ((None, None, 1, _b64("gt:2")), "before: not a cursor of this listing", "before"),
        ((None, _b64("gcd:2"), None, None), "after: not a cursor of this listing", "after"),
    ],
)
def test_a_page_request_is_refused_naming_the_field(arguments, message, field):
    first, after, last, before = arguments
    with pytest.raises(BadUserInputError) as caught:
        page_request(first, after, last, before, "cards", "gc:")
    assert caught.value.message.split(" (")[0] == message
    assert caught.value.field == field


def test_a_page_read_backward_is_put_in_the_listings_order_with_its_flags_swapped():
    read = [Item(9), Item(8), Item(7)]  # read against the listing's order
    forward = in_listing_order(PageRequest(3), read, more=True, behind=False)
    backward = in_listing_order(PageRequest(3, backward=True), read, more=True, behind=False)
    # (items, has_next_page, has_previous_page)
    assert forward == ((Item(9), Item(8), Item(7)), True, False)
    assert backward == ((Item(7), Item(8), Item(9)), False, True)
