"""Plain debits in one statement (PostgreSQL, app.store.plain_debits): the most common request at a
till, a USE by a code without an idempotency key, tried first as one call that does the whole
debit in the server. With a PIN, the code is read first, for the PIN's keyed value on that code,
which the call compares with the stored one under the code's lock, as the full path checks it. A
call that returns nothing wrote nothing; the request then takes the full path (app.domain.ledger),
which answers it, refusals and their reasons included.

What the call does is what the full path does for such a debit, step for step: the live code in
the caller's stores (exactly one), its card and then the code locked, the code's and the card's
state and windows checked, the amount in the card's currency, the open debit holds read under the
lock, the balance, ledger row and audit row written. Anything else (a wrong PIN, a PIN on a run
of wrong ones, a program's rules, not enough available, two codes, an unusable code or card) it
leaves to the full path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from app.currencies import CURRENCY_EXPONENTS
from app.domain.codes import CodeVault, normalise
from app.domain.money import parse_amount
from app.domain.mutations import Mutation, MutationRunner
from app.domain.pins import PinKeys
from app.entities import Transaction
from app.enums import Operation, TransType
from app.errors import BadUserInputError
from app.ids import new_id
from app.policy import Principal
from app.store.ledger import AddressedCode, transaction_from_row
from app.store.plain_debits import CheckedCode, PlainDebit, PlainDebitStore

if TYPE_CHECKING:
    from app.domain.trans_requests import TransRequest

# One currency of each number of decimals the call is given the amount in, to read the amount with.
_ONE_OF_EACH = {places: code for code, places in CURRENCY_EXPONENTS.items()}


@dataclass(frozen=True)
class PlainDebits:
    """Tries a request as a plain debit in one statement."""

    store: PlainDebitStore
    vault: CodeVault
    pins: PinKeys
    runner: MutationRunner

    def debit(
        self,
        principal: Principal,
        request: TransRequest,
        mutation: Mutation,
        now: datetime,
        code: AddressedCode | None = None,
    ) -> Transaction | None:
        """The debit's answer, if it was plain and done in one statement; else None, and nothing
        was written. The request's input is checked already; one with a PIN comes with its code
        as read (``code``)."""
        if not _plain(request, mutation):
            return None
        checked = None
        if request.pin is not None:
            checked = self._checked(code, request.pin)
            if checked is None:
                return None
        row = self.store.debit(self._call(principal, request, now, checked))
        if row is None:
            return None
        return transaction_from_row(row, available_balance=row["balance_after"] - row["held"])

    def _checked(self, code: AddressedCode | None, pin: str) -> CheckedCode | None:
        """The code, with ``pin`` as it would be stored under the current key: the call compares
        that with the stored PIN under the code's lock, and only while no wrong PIN is counted nor
        the code locked, so a right PIN and a wrong one take the same path until then (nothing
        is checked here). None, for the full path, when no PIN is stored (refused there) or it is
        stored under another key (argon2, or a chain a rotation left: moved to the current one
        there)."""
        if code is None or code.pin_hash is None or code.pin_key_ids != self.pins.current_key_id:
            return None
        return CheckedCode(code.code_id, code.giftcard_id, self.pins.hash(code.code_id, pin).value)

    def _call(
        self, principal: Principal, request: TransRequest, now: datetime, checked: CheckedCode | None
    ) -> PlainDebit:
        assert request.code is not None and request.code_type is not None  # _plain checked
        # The audit row as the full path writes it, but for its card and store: the call's.
        (record,) = self.runner.audit_records(principal, Operation.ADD_TRANSACTION, None)
        entry: dict[str, Any] = {
            "trans_type": request.trans_type.value,
            **{name: getattr(request, name) for name in ("source_id", "ref_no", "note", "location_id")},
            "created_by": principal.subject,
        }
        return PlainDebit(
            # A code read already is named by its id: its lookup hashes are not worked out again.
            hashes=() if checked is not None else self.vault.lookup_hashes(normalise(request.code)),
            code_type=request.code_type.value,
            stores=principal.store_ids(),
            checked=checked,
            now=now,
            minor={places: _minor(request.amount, code) for places, code in _ONE_OF_EACH.items()},
            entry_id=new_id(),
            entry=entry,
            audit_id=new_id(),
            audit=record,
        )


def _plain(request: TransRequest, mutation: Mutation) -> bool:
    """Whether the request may be a plain debit: a USE by code, completed now, without a token or
    an idempotency key (a key's claim and seal belong to the full path's transaction)."""
    return (
        request.trans_type is TransType.USE
        and request.code is not None
        and request.code_type is not None
        and request.token is None
        and not request.authorize_only
        and mutation.key is None
    )


def _minor(amount: str, currency: str) -> int | None:
    """``amount`` in ``currency``'s minor units; None when it has more decimals than that."""
    try:
        return parse_amount(amount, currency)
    except BadUserInputError:
        return None
