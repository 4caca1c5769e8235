"""Payment tokens (DESIGN §12, Square's gift card nonce): an untrusted front-end exchanges a code (and
its PIN) for a short-lived, single-use opaque token; its back end looks the card up and spends by the
token, never seeing the code or PIN.

Tokenizing is a code attempt like a lookup (the caller's budget, the PIN checked and counted as a debit
by code checks it, the uniform refusal). A token is kept only as a keyed hash (the code lookup keys,
tried under each as codes are) and stands for one code of one card in the card's store. A lookup by
token does not use it up; the transaction that spends it does, in its own database transaction, by a
conditional update: of two spends of one token at most one commits. A used, expired or foreign token,
one whose code was revoked or has expired since, or one of a code type the caller may not use is the
uniform refusal for every caller. Tokens are 192 random bits: they cannot be guessed, so looking one up
or spending it spends no code attempt budget.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, ClassVar

from sqlmodel import Session

from app.domain.addressing import UNUSABLE, Addressing, Guards, refuse
from app.domain.attempts import CodeAttempt, code_attempt
from app.domain.codes import CodeVault, validate_code, validate_pin
from app.domain.mutations import Mutation, MutationRunner, Work
from app.domain.scoping import narrow
from app.entities import Transaction
from app.enums import CodeType, Operation
from app.errors import BadUserInputError, CardNotUsableError, GiftCardError, NotFoundError
from app.policy import Permission, Policy, Principal
from app.store import cards as card_store
from app.store import payment_tokens as store
from app.store.ledger import AddressedCode
from app.store.payment_tokens import PaymentTokenStore, TokenRow

if TYPE_CHECKING:
    from app.domain.trans_requests import TransRequest

PREFIX = "gct_"
_RANDOM_BYTES = 24  # 192 bits, 32 URL-safe characters
_TOKEN = re.compile(rf"{PREFIX}[A-Za-z0-9_-]{{32}}")
_PURPOSE = b"payment-token"  # what the keyed hash is of: never a code's hash
_MALFORMED = "token: a payment token is 'gct_' and 32 letters, digits, '-' or '_' (from giftcardTokenize)"

# The work of a transaction by token: given the code type, card and code the token stands for.
SpendWork = Callable[[CodeType, int, int], Work[Transaction]]


@dataclass(frozen=True)
class TokenRequest:
    """What ``giftcardTokenize`` asks for: a code, narrowed by its type, and the code's PIN."""

    OMITTED_WHEN_NONE: ClassVar[tuple[str, ...]] = ("store_id",)

    code: str
    code_type: CodeType | None = None
    pin: str | None = None
    store_id: str | None = None  # only this one of the caller's stores (a code in two of them)


@dataclass(frozen=True)
class IssuedToken:
    """A new token, shown once; the card and store are for the audit trail, not the answer."""

    token: str
    expires_at: datetime
    giftcard_id: int
    store_id: str


def is_token(token: str) -> bool:
    return _TOKEN.fullmatch(token) is not None


class TokenIndex:
    """Finds the token a caller sends, by its keyed hash under every lookup key."""

    def __init__(self, vault: CodeVault, rows: PaymentTokenStore) -> None:
        self._vault = vault
        self._rows = rows

    def hashes(self, token: str) -> tuple[bytes, ...]:
        """The token's keyed hash under every lookup key, current first (the first is stored)."""
        return self._vault.keyed_digests(_PURPOSE, token.encode())

    @property
    def key_id(self) -> str:
        return self._vault.lookup_key_id

    def find(self, principal: Principal, token: str, now: datetime) -> TokenRow | None:
        """The usable token in the caller's stores, of a code type it may use and a code not expired
        at ``now``; None for anything else (malformed, unknown, used, expired, foreign)."""
        if not is_token(token):
            return None
        found = self._rows.usable(self.hashes(token), principal.store_ids(), now)
        if found is None or _code_expired(found, now):
            return None
        return found


def _code_expired(row: TokenRow, now: datetime) -> bool:
    return row.code_expires_on is not None and row.code_expires_on < now.date()


@dataclass(frozen=True)
class PaymentTokens:
    """Issues tokens (``giftcardTokenize``) and spends them (``giftcardTransAdd`` by token)."""

    runner: MutationRunner
    addressing: Addressing
    policy: Policy
    guards: Guards
    index: TokenIndex
    ttl: timedelta

    # --- giftcardTokenize ------------------------------------------------------------------

    def tokenize(self, principal: Principal, request: TokenRequest, key: str | None = None) -> IssuedToken:
        principal.require(Permission.FIND_BY_CODE)
        principal = narrow(principal, request.store_id)
        # A retry answers as the first request did (the same token), before budget or PIN.
        mutation = Mutation(Operation.TOKENIZE, request, IssuedToken, key)
        replayed: IssuedToken | None = self.runner.replay(principal, mutation)
        if replayed is not None:
            return replayed
        code_types = self.policy.searched_code_types(principal, request.code_type)
        validate_code(request.code, "code")
        if request.pin is not None:
            validate_pin(request.pin, "pin")
        now = datetime.now(UTC)
        with self.guards.floored(principal), code_attempt(self.guards.throttle, principal) as attempt:
            code = self._live_code(principal, code_types, request.code)
            guard = self.addressing.code_guard(principal, code, request.pin, now)
            work = self._issue(principal, code, now, attempt)
            issued = self.runner.run(principal, mutation, work, guard)
            attempt.hit()
            return issued

    def _live_code(self, principal: Principal, code_types: tuple[CodeType, ...], code: str) -> AddressedCode:
        """The one live code of these types; a code under two of them needs code_type."""
        found: list[AddressedCode] = []
        refusal: GiftCardError | None = None
        for code_type in code_types:
            try:
                found.append(self.addressing.live_code(principal, code_type, code))
            except (NotFoundError, CardNotUsableError) as missing:
                refusal = refusal if isinstance(refusal, CardNotUsableError) else missing
        if len(found) > 1:
            # Untrusted, the PIN is not checked yet: that the code exists is not told.
            trusted = BadUserInputError(
                "code_type: the code exists under more than one code type; say which", field="code_type"
            )
            raise refuse(principal, trusted)
        if not found:
            assert refusal is not None  # at least one type was searched
            raise refusal
        return found[0]

    def _issue(
        self, principal: Principal, code: AddressedCode, now: datetime, attempt: CodeAttempt
    ) -> Work[IssuedToken]:
        """After the code's guard: the card usable now, a new token for it, expired ones purged."""

        def work(session: Session) -> IssuedToken:
            card = self.addressing.usable_card(session, principal, code.giftcard_id, now)
            attempt.hit()
            token, expires_at = PREFIX + secrets.token_urlsafe(_RANDOM_BYTES), now + self.ttl
            store.purge_expired(session, now)
            values = {
                "token_hash": self.index.hashes(token)[0],
                "token_key_id": self.index.key_id,
                "store_id": card.store_id,
                "giftcard_id": code.giftcard_id,
                "code_id": code.code_id,
                "subject": principal.subject,
                "created_at": now,
                "expires_at": expires_at,
            }
            store.add_token(session, values)
            return IssuedToken(token, expires_at, code.giftcard_id, card.store_id)

        return work

    # --- giftcardTransAdd by token ---------------------------------------------------------

    def spend(
        self,
        principal: Principal,
        request: TransRequest,
        mutation: Mutation,
        now: datetime,
        work_for: SpendWork,
    ) -> Transaction:
        """The transaction ``work_for`` makes on the token's card, using the token up when it commits."""
        token = request.token
        assert token is not None  # the ledger asks only for transactions by token
        for name in ("code", "code_type", "pin", "giftcard_id"):  # a token names nothing else
            if getattr(request, name) is not None:
                raise BadUserInputError(f"{name}: not allowed with a token", field=name)
        if not is_token(token):
            raise BadUserInputError(_MALFORMED, field="token")
        found = self.index.find(principal, token, now)
        if found is None or found.code_type not in self.policy.usable_code_types(principal):
            raise CardNotUsableError(UNUSABLE)
        work = work_for(found.code_type, found.giftcard_id, found.code_id)

        def guard(session: Session) -> GiftCardError | None:
            """The token still usable under its card's lock (card first, as every writer locks)."""
            card_store.card_for_update(session, found.giftcard_id, None)
            locked = store.usable_for_update(session, found.token_id, now)
            return CardNotUsableError(UNUSABLE) if locked is None or _code_expired(locked, now) else None

        def spend(session: Session) -> Transaction:
            answer = work(session)
            if not store.use_token(session, found.token_id, now, answer.id):
                raise CardNotUsableError(UNUSABLE)  # not reached while the card's lock is held
            return answer

        return self.runner.run(principal, mutation, spend, guard)
