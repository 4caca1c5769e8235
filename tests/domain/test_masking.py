"""The masking step: each code left out, masked or shown in full as the policy says (no database)."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime

import pytest

from app.config import Settings
from app.domain.codes import CodeVault
from app.domain.masking import CodeMasking
from app.entities import Card, ShownCode, StoredCode
from app.enums import CardState, CodeType
from app.policy import Principal
from app.policy_file import load_policy
from tests.conftest import ROOT

KEY = base64.b64encode(b"m" * 32).decode()
VAULT = CodeVault.from_settings(Settings(code_lookup_key=KEY, code_encryption_keys=f"k1:{KEY}"))
POLICY = load_policy(ROOT / "permissions.yaml")
NOW = datetime(2026, 12, 1, tzinfo=UTC)
CODES = {CodeType.PHYSICAL: "PHYS12345678", CodeType.PERSONAL: "PERS87654321"}


def _card(card_id: int = 1, codes: dict[CodeType, str] = CODES) -> Card[StoredCode]:
    stored = []
    for number, (code_type, code) in enumerate(codes.items(), start=card_id * 10):
        sealed = VAULT.seal(code, code_type)
        stored.append(StoredCode(number, code_type, sealed.ciphertext, sealed.key_id, sealed.last4, None))
    return Card(
        card_id,
        "M1",
        "EUR",
        CardState.ACTIVE,
        500,
        NOW,
        NOW,
        "office",
        None,
        None,
        "n",
        None,
        None,
        tuple(stored),
    )


def _principal(*permissions: str) -> Principal:
    return Principal("caller", POLICY.expand(permissions))


def _show(principal: Principal, *cards: Card[StoredCode]):
    return CodeMasking(VAULT, POLICY).show(principal, cards)


def test_a_caller_with_every_permission_sees_every_code_in_full_and_nothing_is_limited():
    everything = _principal("UsePhysicalGiftCardCodes", "UseCryptoGiftCardCodes", "ViewUnmaskedGiftCardCodes")
    result = _show(everything, _card())
    assert result.limited_by_permission is False
    assert result.cards[0].codes == (
        ShownCode(10, CodeType.PHYSICAL, "PHYS12345678", None, False),
        ShownCode(11, CodeType.PERSONAL, "PERS87654321", None, False),
    )


def test_without_the_unmask_permission_a_maskable_code_shows_its_last_four_only():
    result = _show(_principal("UsePhysicalGiftCardCodes", "UseCryptoGiftCardCodes"), _card())
    assert result.limited_by_permission is True
    physical, personal = result.cards[0].codes
    assert physical == ShownCode(10, CodeType.PHYSICAL, "PHYS12345678", None, False)
    assert personal.is_masked and personal.code.endswith("4321") and "PERS8765" not in personal.code
    assert len(personal.code) == len("PERS87654321")


def test_a_code_type_the_caller_may_not_use_is_left_out():
    result = _show(_principal("UsePhysicalGiftCardCodes"), _card())
    assert result.limited_by_permission is True
    assert [code.code_type for code in result.cards[0].codes] == [CodeType.PHYSICAL]


def test_the_card_itself_is_unchanged_and_every_card_is_shown_in_order():
    first, second = _card(1), _card(2, {CodeType.PHYSICAL: "SECOND000001"})
    result = _show(_principal("UsePhysicalGiftCardCodes"), first, second)
    assert [card.id for card in result.cards] == [1, 2]
    assert result.cards[1].codes == (ShownCode(20, CodeType.PHYSICAL, "SECOND000001", None, False),)
    for shown, stored in zip(result.cards, (first, second), strict=True):
        assert (shown.balance, shown.member_id, shown.note, shown.created_at) == (
            stored.balance,
            stored.member_id,
            stored.note,
            stored.created_at,
        )


@pytest.mark.parametrize("expires_on", [None, date(2030, 1, 2)])
def test_a_shown_code_keeps_its_expiry(expires_on):
    sealed = VAULT.seal("EXPIRY000001", CodeType.PHYSICAL)
    code = StoredCode(5, CodeType.PHYSICAL, sealed.ciphertext, sealed.key_id, sealed.last4, expires_on)
    card = Card(3, None, "EUR", CardState.PENDING, 0, NOW, NOW, None, None, None, None, None, None, (code,))
    (shown,) = _show(_principal("UsePhysicalGiftCardCodes"), card).cards[0].codes
    assert shown.expires_on == expires_on


def test_nothing_to_show_is_an_unlimited_empty_result():
    result = _show(_principal("UsePhysicalGiftCardCodes"))
    assert (result.limited_by_permission, result.cards) == (False, ())
