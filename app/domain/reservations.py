"""Reserved PHYSICAL code stock for printed cards.

A reservation generates a batch of free PHYSICAL codes (13 random symbols and a Luhn mod 32 check
character) owned by the token subject that asked; they are stored sealed like card codes and shown
in full only in that response. A reserved code is reserved under every code type: only its owner may
give it to a card, and a card given it as its PHYSICAL code consumes it. A code is never reserved
while a card holds it under any type. A `single` reservation lapses an hour after it was made if no
card took it, and its code is then an ordinary free code.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from app.domain.codes import ALPHABET, CodeVault, SealedCode, mask, plaintext_length
from app.domain.mutations import Mutation, MutationRunner
from app.entities import Reservation, StoredReservedCode
from app.enums import CodeType, Operation
from app.errors import BadUserInputError, ConflictError
from app.models import CodeReservation, ReservedCode
from app.policy import Permission, Principal
from app.store import reservations as store
from app.store.reservations import ReservationStore

RANDOM_LENGTH = 13  # 65 bits from a 32-symbol alphabet
RESERVED_CODE_LENGTH = RANDOM_LENGTH + 1  # and the check character
SINGLE_LIFETIME = timedelta(hours=1)
MAX_NAME_LENGTH = 128

_BASE = len(ALPHABET)
_INDEX = {symbol: index for index, symbol in enumerate(ALPHABET)}


# --- the check character (Luhn mod N over ALPHABET, N = 32) ------------------------------------


def check_character(body: str) -> str:
    """The symbol that makes ``body`` + it a valid Luhn mod 32 code (``body`` is in ALPHABET).

    Checked this way, a code reveals every single changed symbol, and every swap of two adjacent
    different symbols but one: ``2`` and ``Z`` (the first and last of ALPHABET), Luhn's own blind
    spot (09 ↔ 90 in base 10).
    """
    total = 0
    for position, symbol in enumerate(reversed(body)):  # from the right, doubling every other one
        addend = _INDEX[symbol] * (2 if position % 2 == 0 else 1)
        total += addend // _BASE + addend % _BASE  # the digits of addend, written in base N
    return ALPHABET[-total % _BASE]


def generate_reserved_code() -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return body + check_character(body)


# --- reserving ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReservationRequest:
    count: int
    agency: str
    request_name: str
    single: bool = False


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
    validate_name(request.request_name, "requestName")


def _draw_free_codes(session: Session, vault: CodeVault, count: int) -> list[tuple[str, SealedCode]]:
    """``count`` new sealed codes that no card and no reservation has.

    A clash with a card's code, a reserved code or another new one is astronomically unlikely (65
    bits); should one happen, that code is drawn again.
    """
    drawn: dict[bytes, tuple[str, SealedCode]] = {}
    while len(drawn) < count:
        fresh: dict[bytes, tuple[str, SealedCode]] = {}
        for _ in range(count - len(drawn)):
            code = generate_reserved_code()
            seal = vault.seal(code, CodeType.PHYSICAL)
            fresh[seal.lookup_hash] = (code, seal)
        # A code stored under an old lookup key has its hash under that key.
        current = {digest: seal.lookup_hash for _, seal in fresh.values() for digest in seal.lookup_hashes}
        taken = {current[digest] for digest in store.taken_code_hashes(session, current.keys())}
        drawn.update((key, value) for key, value in fresh.items() if key not in taken and key not in drawn)
    return list(drawn.values())


class Reservations:
    """Reserving code stock (in the mutation runner) and listing it for its owner."""

    def __init__(
        self, runner: MutationRunner, vault: CodeVault, store: ReservationStore, max_batch: int
    ) -> None:
        self._runner = runner
        self._vault = vault
        self._store = store
        self._max_batch = max_batch  # GIFTCARDS_MAX_RESERVATION_BATCH

    def reserve(
        self, principal: Principal, request: ReservationRequest, idempotency_key: str | None = None
    ) -> Reservation[str]:
        """Reserve ``request.count`` PHYSICAL codes for the caller; the only time they are shown."""
        principal.require(Permission.RESERVE_CODES)
        _check_request(request, self._max_batch)
        owner = principal.subject
        assert owner is not None

        def work(session: Session) -> Reservation[str]:
            now = datetime.now(UTC)
            drawn = _draw_free_codes(session, self._vault, request.count)
            return _add_reservation(session, owner, request, drawn, now)

        return self._runner.run(
            principal, Mutation(Operation.RESERVE_CODES, request, Reservation[str], idempotency_key), work
        )

    def list(self, principal: Principal, request_name: str) -> list[Reservation[str]]:
        """The caller's own reservations under ``request_name``, codes masked to their last four."""
        principal.require(Permission.RESERVE_CODES)
        validate_name(request_name, "requestName")
        owner = principal.subject
        assert owner is not None
        now = datetime.now(UTC)
        return [_shown(row, now) for row in self._store.find(owner, request_name)]


def _add_reservation(
    session: Session,
    owner: str,
    request: ReservationRequest,
    drawn: list[tuple[str, SealedCode]],
    now: datetime,
) -> Reservation[str]:
    """Store the reservation of the ``drawn`` codes; it answers with them in full."""
    expires_at = now + SINGLE_LIFETIME if request.single else None
    # The request's fields (count, agency, request_name, single) are the reservation's own.
    reservation = CodeReservation(
        **dataclasses.asdict(request), owner=owner, created_at=now, expires_at=expires_at
    )
    store.add_reservation(
        session, reservation, [ReservedCode(reservation_id=0, **seal.columns) for _, seal in drawn]
    )
    assert reservation.id is not None
    return Reservation(
        id=reservation.id,
        **dataclasses.asdict(request),
        created_at=now,
        expires_at=expires_at,
        codes=tuple(code for code, _ in drawn),
        used_count=0,
    )


def _shown(reservation: Reservation[StoredReservedCode], now: datetime) -> Reservation[str]:
    """A reservation as its owner sees it later: codes masked, and whether it lapsed unused."""
    expires_at = reservation.expires_at
    lapsed = (
        reservation.single and reservation.used_count == 0 and expires_at is not None and expires_at <= now
    )
    masked = tuple(mask(code.last4, plaintext_length(code.ciphertext)) for code in reservation.codes)
    return dataclasses.replace(reservation, codes=masked, lapsed=lapsed)  # type: ignore[arg-type,return-value]


# --- taking a reserved code ---------------------------------------------------------------------


def take_reserved_code(
    session: Session,
    lookup_hashes: tuple[bytes, ...],
    code_type: CodeType,
    principal: Principal,
    now: datetime,
    field: str,
) -> None:
    """Refuse a code reserved for another client, whatever type a new card is given it as.

    The owner's PHYSICAL use consumes the reservation (the printed stock); given as another type,
    the code stays in stock.
    """
    found = store.reserved_code(session, lookup_hashes)
    if found is None:
        return
    code, reservation = found
    # A lapsed single reservation's code is free again: anyone may use it. A PHYSICAL use still
    # marks it used, so the owner's listing counts it and no longer calls the reservation lapsed.
    if not _lapsed(code, reservation, now) and reservation.owner != principal.subject:
        raise ConflictError(f"{field}: this code is reserved for another client", field=field)
    if code_type is CodeType.PHYSICAL:
        code.used_at = now


def _lapsed(code: ReservedCode, reservation: CodeReservation, now: datetime) -> bool:
    """Whether a single reservation expired before a card took its code (if one ever did)."""
    expires_at = reservation.expires_at
    if expires_at is None or expires_at > now:
        return False
    used_at = code.used_at
    return used_at is None or used_at >= expires_at  # taken, if at all, once it was free
