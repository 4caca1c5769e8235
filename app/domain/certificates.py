"""Gift card certificates: which code of a card is printed, for whom, and the audit event each
printed certificate leaves.

A certificate shows a code in full (as a QR code, a barcode and text), so it is a disclosure: the
card's live PHYSICAL code, else its live PERSONAL code for a caller who may see that one unmasked;
never a masked code. The caller needs ``PrintGiftCardCertificate`` and the ``Use…`` permission of
the printed code's type. Drawing is not done here: :meth:`Certificates.print` is handed the function
that draws (app.certificates), and writes the audit event once the drawing is done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from app.domain.audit import AuditTrail
from app.domain.codes import CodeVault
from app.domain.identifiers import parse_card_id
from app.domain.money import format_amount
from app.entities import Card, StoredCode
from app.enums import CardState, CodeType
from app.errors import NotFoundError
from app.policy import Permission, Policy, Principal, Visibility
from app.store.cards import CardStore
from app.store.programs import ProgramStore

NO_SUCH_CARD = "id: no such gift card"
NO_PRINTABLE_CODE = "id: the gift card has no code this token may print"
# The code types a certificate may show, in order of preference.
PRINTABLE = (CodeType.PHYSICAL, CodeType.PERSONAL)


@dataclass(frozen=True, slots=True)
class Certificate:
    """What a certificate shows; ``code`` in full."""

    card_id: int
    code: str
    code_type: CodeType
    balance: str  # a decimal string in ``currency``
    currency: str
    expires_at: datetime | None  # the card's
    code_expires_on: date | None  # the printed code's
    program_name: str | None


class Certificates:
    def __init__(
        self, cards: CardStore, programs: ProgramStore, vault: CodeVault, policy: Policy, audit: AuditTrail
    ) -> None:
        self._cards = cards
        self._programs = programs
        self._vault = vault
        self._policy = policy
        self._audit = audit

    def print(self, principal: Principal, card_id: str, draw: Callable[[Certificate], bytes]) -> bytes:
        """The certificate of the card ``card_id`` (in the caller's stores), drawn by ``draw``, and
        its CODE_DISCLOSED event. UNAUTHENTICATED, FORBIDDEN (naming the permission), BAD_USER_INPUT
        (a malformed id) or NOT_FOUND (no such card, or no code the caller may print) otherwise."""
        principal.require(Permission.PRINT_CERTIFICATE)
        found = self._cards.find_by_id(parse_card_id(card_id), principal.store_ids())
        if not found or found[0].state is CardState.DEACTIVATED:
            raise NotFoundError(NO_SUCH_CARD if not found else NO_PRINTABLE_CODE, field="id")
        card = found[0]
        code = self._printable(principal, card)
        drawn = draw(self._certificate(card, code))
        self._audit.certificate_printed(principal, card, code.code_type)
        return drawn

    def _printable(self, principal: Principal, card: Card[StoredCode]) -> StoredCode:
        """The code to print: the first printable type the card has a live code of (its newest);
        FORBIDDEN without that type's ``Use…`` permission, NOT_FOUND when it would be masked."""
        today = datetime.now(UTC).date()
        live = [code for code in card.codes if code.expires_on is None or code.expires_on >= today]
        for code_type in PRINTABLE:
            codes = [code for code in live if code.code_type is code_type]
            if not codes:
                continue
            self._policy.require_code_type(principal, code_type)
            if self._policy.visibility(principal, code_type) is not Visibility.FULL:
                break  # never a masked code
            return max(codes, key=lambda code: code.id)
        raise NotFoundError(NO_PRINTABLE_CODE, field="id")

    def _certificate(self, card: Card[StoredCode], code: StoredCode) -> Certificate:
        program = None if card.program_id is None else self._programs.get(card.program_id)
        return Certificate(
            card_id=card.id,
            code=self._vault.open(code.ciphertext, code.key_id, code.code_type),
            code_type=code.code_type,
            balance=format_amount(card.balance, card.currency),
            currency=card.currency,
            expires_at=card.expires_at,
            code_expires_on=code.expires_on,
            program_name=None if program is None else program.name,
        )
