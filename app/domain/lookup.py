"""Find cards by code, id or member, and show each code only as the caller's permissions allow.

A code lookup searches only the code types the caller may use. Revoked and expired codes never
match. Per code on a returned card the policy decides: left out (no ``Use…`` permission), masked
to its last four characters, or shown in full; ``limited_by_permission`` says whether anything
was held back.
"""

from __future__ import annotations

from datetime import UTC, datetime

from app.auth.throttle import Throttle
from app.domain.addressing import AMBIGUOUS_STORE
from app.domain.attempts import code_attempt
from app.domain.codes import CodeVault, validate_code
from app.domain.identifiers import parse_card_id, validate_member_id
from app.domain.masking import CodeMasking, SearchResult
from app.domain.payment_tokens import TokenIndex
from app.domain.scoping import narrow
from app.enums import CodeType
from app.errors import BadUserInputError, ForbiddenError, UnauthenticatedError
from app.policy import Permission, Policy, Principal
from app.store.cards import CardStore


class Lookup:
    def __init__(
        self,
        cards: CardStore,
        vault: CodeVault,
        masking: CodeMasking,
        policy: Policy,
        throttle: Throttle,
        tokens: TokenIndex | None = None,
    ) -> None:
        self._cards = cards
        self._vault = vault
        self._masking = masking
        self._policy = policy
        self._throttle = throttle  # code attempts by callers without ListGiftCards
        self._tokens = tokens  # payment tokens (giftcardTokenize)

    def find(  # noqa: PLR0913  (the lookup's arguments, each by keyword, as the API's)
        self,
        principal: Principal,
        *,
        code: str | None = None,
        code_type: CodeType | None = None,
        card_id: str | None = None,
        member_id: str | None = None,
        store_id: str | None = None,
        token: str | None = None,
    ) -> SearchResult:
        """The cards found by exactly one of ``code`` (narrowed by ``code_type``), ``card_id``,
        ``member_id`` or a payment ``token``, in the caller's stores (or ``store_id`` of them);
        nothing found is an empty result."""
        if principal.is_anonymous:
            raise UnauthenticatedError("a bearer token is required")
        principal = narrow(principal, store_id)
        given = [
            name
            for name, value in (("code", code), ("id", card_id), ("member_id", member_id), ("token", token))
            if value is not None
        ]
        if len(given) != 1:
            raise BadUserInputError(
                "giftcard: give exactly one of code, id, member_id or token", field=",".join(given) or None
            )
        if code_type is not None and code is None:
            raise BadUserInputError("code_type: only allowed together with code", field="code_type")
        if code is not None:
            return self._by_code(principal, code, code_type)
        if token is not None:
            return self._by_token(principal, token)
        principal.require(Permission.LIST_GIFT_CARDS)
        if card_id is not None:
            cards = self._cards.find_by_id(parse_card_id(card_id), principal.store_ids())
        else:
            assert member_id is not None
            cards = self._cards.find_by_member(validate_member_id(member_id), principal.store_ids())
        return self._masking.show(principal, cards)

    def _by_token(self, principal: Principal, token: str) -> SearchResult:
        """The card a payment token stands for (the token is not used up), its codes masked unless
        the caller may see them without holding them; any token that cannot be used, or whose code
        type the caller may not use, finds nothing. Tokens cannot be guessed: no code attempt budget
        is spent."""
        principal.require(Permission.FIND_BY_CODE)
        usable = self._policy.usable_code_types(principal)
        if not usable:
            raise ForbiddenError("the token lacks every Use…GiftCardCodes permission")
        assert self._tokens is not None  # built with the index wherever tokens can be sent
        found = self._tokens.find(principal, token, datetime.now(UTC))
        if found is None or found.code_type not in usable:
            return self._masking.show(principal, [])
        cards = self._cards.find_by_id(found.giftcard_id, principal.store_ids())
        return self._masking.show(principal, cards, untold=True)  # the back end never sees the code

    def _by_code(self, principal: Principal, code: str, code_type: CodeType | None) -> SearchResult:
        principal.require(Permission.FIND_BY_CODE)
        if code_type is not None:
            self._policy.require_code_type(principal, code_type)
        usable = self._policy.usable_code_types(principal)
        if not usable:
            raise ForbiddenError("the token lacks every Use…GiftCardCodes permission")
        normalised, stores = validate_code(code, "code"), principal.store_ids()
        today = datetime.now(UTC).date()
        with code_attempt(self._throttle, principal) as attempt:
            matches = [
                match
                for match in self._cards.find_by_code_hash(self._vault.lookup_hashes(normalised), stores)
                if match.code_type in usable
                and (code_type is None or match.code_type == code_type)
                and (match.expires_on is None or match.expires_on >= today)
            ]
            if matches:
                attempt.hit()
        if len({match.code_type for match in matches}) > 1:
            raise BadUserInputError(
                "code_type: the code exists under more than one code type; say which", field="code_type"
            )
        if len(matches) > 1:
            raise BadUserInputError(AMBIGUOUS_STORE, field="store_id")
        return self._masking.show(principal, [match.card for match in matches])
