"""The masking step: each code of a card as the caller may see it.

Per code the policy decides: left out (no ``Use…`` permission for its type), masked to its last
four characters, or opened and shown in full. Every read that returns cards (lookups, listings,
a card mutation's answer) goes through here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from app.domain.codes import CodeVault, mask, plaintext_length
from app.entities import Card, ShownCode, StoredCode
from app.policy import Policy, Principal, Visibility

# A card as the caller may see it: what lookups, listings and card mutations answer.
ShownCard = Card[ShownCode]


@dataclass(frozen=True, slots=True)
class SearchResult:
    limited_by_permission: bool
    cards: tuple[ShownCard, ...]


class CodeMasking:
    def __init__(self, vault: CodeVault, policy: Policy) -> None:
        self._vault = vault
        self._policy = policy

    def show(
        self, principal: Principal, cards: Iterable[Card[StoredCode]], *, untold: bool = False
    ) -> SearchResult:
        """The cards with their codes as ``principal`` may see them; whether any was hidden or masked.
        ``untold``: the caller was told none of the cards' codes (a lookup by payment token), so a code
        that every Use… holder sees in full is masked too, unless it may list cards."""
        limited = False
        shown: list[ShownCard] = []
        for card in cards:
            codes = []
            for code in card.codes:
                visibility = self._policy.visibility(principal, code.code_type)
                if untold and visibility is Visibility.FULL and self._shown_to_holders(principal, code):
                    visibility = Visibility.MASKED
                limited = limited or visibility is not Visibility.FULL
                if visibility is not Visibility.HIDDEN:
                    codes.append(self._code(code, visibility is Visibility.MASKED))
            shown.append(card.with_codes(tuple(codes)))
        return SearchResult(limited_by_permission=limited, cards=tuple(shown))

    def _shown_to_holders(self, principal: Principal, code: StoredCode) -> bool:
        """Whether the caller sees ``code`` in full only as every Use… holder does (one that could
        not list cards), not by an unmask permission of its own."""
        return not principal.is_trusted and self._policy.code_types[code.code_type].unmask is None

    def _code(self, code: StoredCode, masked: bool) -> ShownCode:
        if masked:
            text = mask(code.last4, plaintext_length(code.ciphertext))
        else:
            text = self._vault.open(code.ciphertext, code.key_id, code.code_type)
        return ShownCode(code.id, code.code_type, text, code.expires_on, masked)
