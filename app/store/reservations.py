"""Reserved PHYSICAL code stock: reservations and their sealed codes.

Writes run on the mutation's session; the owner's listing reads through :class:`ReservationStore`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import fields
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session
from sqlmodel import select as sqlmodel_select

from app.db import READ_ONLY
from app.entities import Reservation, StoredReservedCode
from app.models import CodeReservation, GiftCardCode, ReservedCode
from app.store.scope import Stores, in_stores

_card_codes = GiftCardCode.__table__  # type: ignore[attr-defined]
_reservations = CodeReservation.__table__  # type: ignore[attr-defined]
_reserved = ReservedCode.__table__  # type: ignore[attr-defined]
# The reservation's own columns, in the order of Reservation's fields.
_RESERVATION_FIELDS = tuple(item.name for item in fields(Reservation))[:7]


def reserved_code(
    session: Session, lookup_hashes: Collection[bytes], store_id: str
) -> tuple[ReservedCode, CodeReservation] | None:
    """The store's reserved code with one of these hashes (one per lookup key) and its reservation,
    locked."""
    statement = (
        sqlmodel_select(ReservedCode, CodeReservation)
        .join(CodeReservation, CodeReservation.id == ReservedCode.reservation_id)  # type: ignore[arg-type]
        .where(
            ReservedCode.lookup_hash.in_(list(lookup_hashes)),  # type: ignore[attr-defined]
            ReservedCode.store_id == store_id,
        )
        .with_for_update()
    )
    return session.exec(statement).first()


def taken_code_hashes(session: Session, lookup_hashes: Collection[bytes], store_id: str) -> set[bytes]:
    """Those of the hashes that a card code of the store, of any type (live or revoked), or a
    reserved code of the store has."""
    hashes = list(lookup_hashes)
    on_cards = select(_card_codes.c.lookup_hash).where(
        _card_codes.c.lookup_hash.in_(hashes), _card_codes.c.store_id == store_id
    )
    reserved = select(_reserved.c.lookup_hash).where(
        _reserved.c.lookup_hash.in_(hashes), _reserved.c.store_id == store_id
    )
    return {bytes(row[0]) for statement in (on_cards, reserved) for row in session.execute(statement)}


def add_reservation(session: Session, reservation: CodeReservation, codes: list[ReservedCode]) -> None:
    session.add(reservation)
    session.flush()
    assert reservation.id is not None
    for code in codes:
        code.reservation_id = reservation.id
    session.add_all(codes)
    session.flush()


class ReservationStore:
    """Reads reservations back for their owner."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def find(self, owner: str, request_name: str, stores: Stores) -> list[Reservation[StoredReservedCode]]:
        """The owner's reservations under this request name in ``stores``, oldest first, with their
        codes: two statements whatever the number of reservations, on a connection that only reads."""
        reservations = (
            select(*(_reservations.c[name] for name in _RESERVATION_FIELDS))
            .where(
                _reservations.c.request_name == request_name,
                _reservations.c.owner == owner,
                *in_stores(_reservations.c.store_id, stores),
            )
            .order_by(_reservations.c.id)
        )
        with self._engine.connect().execution_options(**{READ_ONLY: True}) as connection:
            found: dict[int, tuple[Any, list[StoredReservedCode]]] = {
                row.id: (row, []) for row in connection.execute(reservations)
            }
            if found:
                used = _reserved.c.used_at.is_not(None)
                codes = (
                    select(_reserved.c.reservation_id, _reserved.c.ciphertext, _reserved.c.last4, used)
                    .where(_reserved.c.reservation_id.in_(list(found)))
                    .order_by(_reserved.c.reservation_id, _reserved.c.id)
                )
                for row in connection.execute(codes):
                    found[row[0]][1].append(StoredReservedCode(bytes(row[1]), row[2], bool(row[3])))
        return [
            Reservation(**row._asdict(), codes=tuple(codes), used_count=sum(code.used for code in codes))
            for row, codes in found.values()
        ]
