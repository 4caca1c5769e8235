"""Reserved PHYSICAL code stock for printed cards, owned by the token subject that asked.

A reserved code (13 random symbols and a Luhn mod 32 check character) is shown in full only in the
answer that reserved it; only its owner may give it to a card, under any type, and a PHYSICAL use
consumes it. A `single` reservation no card took lapses after an hour: its code is then free.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from sqlmodel import Session

from app.domain.card_requests import PlannedCode
from app.domain.codes import ALPHABET, CodeVault, SealedCode, generate_code, mask, plaintext_length
from app.domain.mutations import Mutation, MutationRunner
from app.domain.scoping import NO_SUCH_STORE, home_store
from app.entities import Reservation, StoredReservedCode
from app.enums import CodeType, Operation
from app.errors import BadUserInputError, ConflictError, NotFoundError
from app.models import CodeReservation, ReservedCode
from app.policy import Permission, Principal
from app.store import reservations as store
from app.store.cards import store_exists
from app.store.reservations import ReservationStore

RANDOM_LENGTH = 13  # 65 bits from a 32-symbol alphabet
RESERVED_CODE_LENGTH = RANDOM_LENGTH + 1  # and the check character
SINGLE_LIFETIME = timedelta(hours=1)
MAX_NAME_LENGTH = 128

_BASE = len(ALPHABET)
_INDEX = {symbol: index for index, symbol in enumerate(ALPHABET)}


def check_character(body: str) -> str:
    """The symbol that makes ``body`` + it a valid Luhn mod 32 code. It reveals every changed symbol
    and every swap of adjacent symbols but ``2`` ↔ ``Z``, the first and last (Luhn's own 09 ↔ 90)."""
    total = 0
    for position, symbol in enumerate(reversed(body)):  # from the right, doubling every other one
        addend = _INDEX[symbol] * (2 if position % 2 == 0 else 1)
        total += addend // _BASE + addend % _BASE  # the digits of addend, written in base N
    return ALPHABET[-total % _BASE]


def generate_reserved_code() -> str:
    return (body := generate_code(RANDOM_LENGTH)) + check_character(body)


@dataclass(frozen=True)
class ReservationRequest:
    count: int
    agency: str
    request_name: str
    single: bool = False
    store_id: str | None = None  # the caller's one store when None
    # An idempotency key covers it only when given: the same digest as before stores existed.
    OMITTED_WHEN_NONE: ClassVar[tuple[str, ...]] = ("store_id",)


def validate_name(value: str, field: str) -> str:
    if not 1 <= len(value) <= MAX_NAME_LENGTH or not value.isprintable():
        raise BadUserInputError(f"{field}: 1 to {MAX_NAME_LENGTH} printable characters", field=field)
    return value


def _check_request(request: ReservationRequest, max_batch: int) -> None:
    if not 1 <= request.count <= max_batch:
        raise BadUserInputError(
            f"count: reserve 1 to {max_batch} codes at a time (larger batches are refused, not truncated)",
            field="count",
        )
    if request.single and request.count != 1:
        raise BadUserInputError("count: a single reservation holds exactly one code", field="count")
    validate_name(request.agency, "agency")
    validate_name(request.request_name, "request_name")


def _draw_free_codes(
    session: Session, vault: CodeVault, count: int, store_id: str
) -> list[tuple[str, SealedCode]]:
    """``count`` new sealed codes that no card and no reservation of the store has; a code that
    clashes with one or with another new one (astronomically unlikely, at 65 bits) is drawn again."""
    drawn: dict[bytes, tuple[str, SealedCode]] = {}
    while len(drawn) < count:
        fresh: dict[bytes, tuple[str, SealedCode]] = {}
        for _ in range(count - len(drawn)):
            code = generate_reserved_code()
            seal = vault.seal(code, CodeType.PHYSICAL)
            fresh[seal.lookup_hash] = (code, seal)
        # A code stored under an old lookup key has its hash under that key.
        current = {digest: seal.lookup_hash for _, seal in fresh.values() for digest in seal.lookup_hashes}
        taken = {current[digest] for digest in store.taken_code_hashes(session, current.keys(), store_id)}
        drawn.update((key, value) for key, value in fresh.items() if key not in taken and key not in drawn)
    return list(drawn.values())


@dataclass(frozen=True)
class Reservations:
    """Reserving code stock (in the mutation runner) and listing it for its owner."""

    runner: MutationRunner
    vault: CodeVault
    reads: ReservationStore
    max_batch: int  # GIFTCARDS_MAX_RESERVATION_BATCH

    def reserve(
        self, principal: Principal, request: ReservationRequest, key: str | None = None
    ) -> Reservation[str]:
        """Reserve ``request.count`` PHYSICAL codes for the caller; the only time they are shown."""
        principal.require(Permission.RESERVE_CODES)
        _check_request(request, self.max_batch)
        owner = principal.subject
        assert owner is not None
        store_id = home_store(principal, request.store_id)

        def work(session: Session) -> Reservation[str]:
            if principal.store_ids() is None and not store_exists(session, store_id):
                raise NotFoundError(NO_SUCH_STORE, field="store_id")
            now = datetime.now(UTC)
            drawn = _draw_free_codes(session, self.vault, request.count, store_id)
            expires_at = now + SINGLE_LIFETIME if request.single else None
            # The request's fields (count, agency, request_name, single) are the reservation's own.
            fields = {**dataclasses.asdict(request)}
            del fields["store_id"]
            reservation = CodeReservation(
                **fields, store_id=store_id, owner=owner, created_at=now, expires_at=expires_at
            )
            codes = [ReservedCode(reservation_id=0, store_id=store_id, **seal.columns) for _, seal in drawn]
            store.add_reservation(session, reservation, codes)
            assert reservation.id is not None
            shown = tuple(code for code, _ in drawn)
            return Reservation(
                reservation.id,
                **fields,
                created_at=now,
                expires_at=expires_at,
                codes=shown,
                used_count=0,
                store_id=store_id,  # the audit event's store
            )

        mutation = Mutation(Operation.RESERVE_CODES, request, Reservation[str], key)
        return self.runner.run(principal, mutation, work)

    def list(self, principal: Principal, request_name: str) -> list[Reservation[str]]:
        """The caller's own reservations under ``request_name``, codes masked to their last four."""
        principal.require(Permission.RESERVE_CODES)
        validate_name(request_name, "request_name")
        owner = principal.subject
        assert owner is not None
        now = datetime.now(UTC)
        return [_shown(row, now) for row in self.reads.find(owner, request_name, principal.store_ids())]


def _shown(reservation: Reservation[StoredReservedCode], now: datetime) -> Reservation[str]:
    """A reservation as its owner sees it later: codes masked, and whether it lapsed unused."""
    expires_at = reservation.expires_at
    lapsed = (
        reservation.single and reservation.used_count == 0 and expires_at is not None and expires_at <= now
    )
    masked = tuple(mask(code.last4, plaintext_length(code.ciphertext)) for code in reservation.codes)
    return dataclasses.replace(reservation, codes=masked, lapsed=lapsed)  # type: ignore[arg-type,return-value]


def take_reserved_code(
    session: Session,
    lookup_hashes: tuple[bytes, ...],
    plan: PlannedCode,
    principal: Principal,
    now: datetime,
    store_id: str,
) -> None:
    """Refuse a code of the store reserved for another client, whatever type it is given as. The
    owner's PHYSICAL use consumes the reservation (the printed stock); given as another type, the
    code stays in stock."""
    found = store.reserved_code(session, lookup_hashes, store_id)
    if found is None:
        return
    code, reservation = found
    # A lapsed single reservation's code is free again: anyone may use it. A PHYSICAL use still
    # marks it used, so the owner's listing counts it and no longer calls the reservation lapsed.
    if not _lapsed(code, reservation, now) and reservation.owner != principal.subject:
        raise ConflictError(f"{plan.field}: this code is reserved for another client", field=plan.field)
    if plan.code_type is CodeType.PHYSICAL:
        code.used_at = now


def _lapsed(code: ReservedCode, reservation: CodeReservation, now: datetime) -> bool:
    """Whether a single reservation expired before a card took its code (if one ever did)."""
    expires_at = reservation.expires_at
    if expires_at is None or expires_at > now:
        return False
    used_at = code.used_at
    return used_at is None or used_at >= expires_at  # taken, if at all, once it was free
