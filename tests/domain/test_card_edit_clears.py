"""An edit's ``enabled`` and ``clear``, checked before any write: each is a change of its own, a
field is cleared or set (not both), only operator fields are cleared, and none cleared is None (the
idempotency digest of an edit that clears nothing is the one it had before clearing existed)."""

from __future__ import annotations

from datetime import date

import pytest

from app.domain.card_requests import CLEARABLE, CardDetails, CardEdit, check_edit
from app.domain.idempotency import encode
from app.errors import BadUserInputError

TODAY = date(2026, 12, 1)


@pytest.mark.parametrize(
    "edit",
    [CardEdit("1", enabled=True), CardEdit("1", enabled=False), CardEdit("1", clear=frozenset({"note"}))],
)
def test_enabled_or_a_clear_alone_makes_an_edit(edit):
    request, planned = check_edit(edit, TODAY)
    assert (request, planned) == (edit, [])


def test_the_operator_fields_are_the_clearable_ones():
    assert {"usable_from", "expires_at", "note", "source_id", "ref_no"} == CLEARABLE


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (CardEdit("1", details=CardDetails(note="n"), clear=frozenset({"note"})), "note"),
        (CardEdit("1", clear=frozenset({"member_id", "ref_no"})), "member_id"),
    ],
)
def test_a_field_set_and_cleared_or_not_an_operator_field_is_refused(edit, field):
    with pytest.raises(BadUserInputError) as caught:
        check_edit(edit, TODAY)
    assert (caught.value.message, caught.value.field) == (f"{field}: cannot be cleared", field)


def test_none_cleared_is_none_and_digests_as_before_clearing_existed():
    request, _ = check_edit(CardEdit("1", details=CardDetails(note="n"), clear=frozenset()), TODAY)
    assert request.clear is None
    assert b"clear" not in encode(request) and b"enabled" not in encode(request)
    cleared, _ = check_edit(CardEdit("1", clear=frozenset({"ref_no", "note"})), TODAY)
    assert b'"clear":["note","ref_no"]' in encode(cleared)
