"""Card queries: lookups by code hash, id and member; inserting a card and its codes.

Reads on the hot path (lookups) run prebuilt SQLAlchemy Core statements, compiled once for the
engine's dialect, on a raw pooled DBAPI connection: building an ORM query costs far more than the
query itself. Writes go through the ORM session of a :class:`~app.db.UnitOfWork`.

A code is looked up by its hash under every lookup key of the ring (``lookup_hash IN (…)``), so
rows not yet moved to the current key by a rotation are still found.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, and_, bindparam, literal_column, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Select
from sqlmodel import Session
from sqlmodel import select as sqlmodel_select

from app.entities import CARD_FIELDS, Card, StoredCode, card_of
from app.enums import CardState, CodeType
from app.errors import ConflictError
from app.models import GiftCard, GiftCardCode, GiftCardEvent, LedgerEntry, Store
from app.store.prepared import Prepared, binds, one_statement
from app.store.scope import Stores, in_stores

_cards = GiftCard.__table__  # type: ignore[attr-defined]
_codes = GiftCardCode.__table__  # type: ignore[attr-defined]
_ledger = LedgerEntry.__table__  # type: ignore[attr-defined]


# The columns behind Card and StoredCode, in their fields' order; queries select them in this order.
CARD_COLUMNS = tuple(_cards.c[name] for name in CARD_FIELDS)
CODE_COLUMN_NAMES = tuple(item.name for item in fields(StoredCode))
_STATE = CARD_FIELDS.index("state")


def card_from_row(row: Sequence[Any], codes: Sequence[StoredCode] = ()) -> Card[StoredCode]:
    """The card whose CARD_COLUMNS start ``row``, with ``codes``."""
    values = list(row[: len(CARD_FIELDS)])
    values[_STATE] = CardState(values[_STATE])
    return card_of(values, tuple(codes))


def code_from_row(row: Sequence[Any], offset: int = 0) -> StoredCode:
    """The code in the CODE_COLUMN_NAMES columns of ``row``, starting at ``offset``."""
    code_id, code_type, ciphertext, key_id, last4, expires_on = row[offset : offset + len(CODE_COLUMN_NAMES)]
    return StoredCode(code_id, CodeType(code_type), bytes(ciphertext), key_id, last4, expires_on)


@dataclass(frozen=True, slots=True)
class CodeMatch:
    """A live code that matched a lookup hash, and the card it belongs to."""

    code_type: CodeType
    expires_on: date | None
    card: Card[StoredCode]


# Column positions in the rows of _card_and_codes(): card columns, then one live code, then (for
# code lookups) the type and expiry of the code that matched.
_CARD_ID = 0
_CODE_ID = len(CARD_COLUMNS)
_MATCHED_TYPE = _CODE_ID + len(CODE_COLUMN_NAMES)
_MATCHED_EXPIRES = _MATCHED_TYPE + 1


def _card_and_codes(card_filter: Any) -> Select[Any]:
    live_codes = _codes.alias("k")
    return (
        select(*CARD_COLUMNS, *(live_codes.c[name] for name in CODE_COLUMN_NAMES))
        .select_from(
            _cards.outerjoin(
                live_codes, and_(live_codes.c.giftcard_id == _cards.c.id, live_codes.c.revoked_at.is_(None))
            )
        )
        .where(card_filter)
        .order_by(_cards.c.id, live_codes.c.id)
    )


class CardStore:
    """Read queries over one engine; statements are compiled when the store is made."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # One statement per number of lookup keys (a process's keyring has a fixed size) and of
        # the caller's stores (most callers have one).
        self._prepared: dict[tuple[str, int, int | None], Prepared] = {}
        self._ping = Prepared(select(literal_column("1")), engine)

    def _statement(self, kind: str, count: int, stores: Stores) -> Prepared:
        """The prepared statement for a lookup by ``kind`` (``code``: ``count`` hashes ``h0``…,
        ``id``, ``member``) among ``stores`` (bound as ``s0``…)."""
        key = (kind, count, None if stores is None else len(stores))
        if (prepared := self._prepared.get(key)) is not None:
            return prepared
        store_binds = None if stores is None else binds("s", len(stores))
        scope = in_stores(_cards.c.store_id, store_binds)
        if kind == "id":
            statement = _card_and_codes(and_(_cards.c.id == bindparam("id"), *scope))
        elif kind == "member":
            statement = _card_and_codes(and_(_cards.c.member_id == bindparam("member"), *scope))
        else:
            matched = _codes.alias("m")
            statement = (
                _card_and_codes(
                    and_(
                        matched.c.lookup_hash.in_(binds("h", count)),
                        matched.c.revoked_at.is_(None),
                        *in_stores(matched.c.store_id, store_binds),  # the code's: its unique index has it
                    )
                )
                .add_columns(matched.c.code_type, matched.c.expires_on)
                .join(matched, matched.c.giftcard_id == _cards.c.id)
            )
        prepared = self._prepared[key] = Prepared(statement, self.engine)
        return prepared

    def _run(self, kind: str, stores: Stores, values: Sequence[Any], **params: Any) -> tuple[Prepared, Any]:
        prepared = self._statement(kind, len(values), stores)
        params.update({f"h{index}": value for index, value in enumerate(values)})
        params.update({f"s{index}": value for index, value in enumerate(stores or ())})
        with one_statement(self.engine) as connection:
            return prepared, prepared.run(connection, **params)

    def find_by_code_hash(self, lookup_hashes: Sequence[bytes], stores: Stores) -> list[CodeMatch]:
        """Live codes among ``stores`` whose hash is one of ``lookup_hashes`` (a code's hash under
        each lookup key)."""
        prepared, rows = self._run("code", stores, lookup_hashes)
        grouped: dict[tuple[str, int], tuple[Sequence[Any], list[StoredCode]]] = {}
        for row in rows:
            _, codes = grouped.setdefault((row[_MATCHED_TYPE], row[_CARD_ID]), (row, []))
            codes.append(code_from_row(prepared.convert(row, _CODE_ID, _MATCHED_TYPE)))
        return [
            CodeMatch(
                CodeType(row[_MATCHED_TYPE]),
                prepared.convert(row, _MATCHED_EXPIRES, _MATCHED_EXPIRES + 1)[0],
                card_from_row(prepared.convert(row, _CARD_ID, _CODE_ID), codes),
            )
            for row, codes in grouped.values()
        ]

    def find_by_id(self, card_id: int, stores: Stores) -> list[Card[StoredCode]]:
        prepared, rows = self._run("id", stores, (), id=card_id)
        return _group(rows, prepared.convert)

    def find_by_member(self, member_id: str, stores: Stores) -> list[Card[StoredCode]]:
        prepared, rows = self._run("member", stores, (), member=member_id)
        return _group(rows, prepared.convert)

    def ping(self) -> None:
        with one_statement(self.engine) as connection:
            self._ping.run(connection)


def _sliced(row: Sequence[Any], start: int, stop: int) -> list[Any]:
    return list(row[start:stop])  # rows the ORM read, converted already


def _group(
    rows: Sequence[Sequence[Any]], convert: Callable[..., list[Any]] = _sliced
) -> list[Card[StoredCode]]:
    grouped: dict[int, tuple[Sequence[Any], list[StoredCode]]] = {}
    for row in rows:
        _, codes = grouped.setdefault(row[_CARD_ID], (row, []))
        if row[_CODE_ID] is not None:
            codes.append(code_from_row(convert(row, _CODE_ID, _MATCHED_TYPE)))
    return [card_from_row(convert(row, _CARD_ID, _CODE_ID), codes) for row, codes in grouped.values()]


# --- writes (inside a unit of work) -----------------------------------------------------------


def code_hash_taken(session: Session, lookup_hashes: Sequence[bytes], code_type: str, store_id: str) -> bool:
    """Whether a code of this type (live or revoked) in the store has one of the hashes (one per
    lookup key)."""
    statement = (
        select(_codes.c.id)
        .where(
            _codes.c.lookup_hash.in_(list(lookup_hashes)),
            _codes.c.code_type == code_type,
            _codes.c.store_id == store_id,
        )
        .limit(1)
    )
    return session.execute(statement).first() is not None


def store_exists(session: Session, store_id: str) -> bool:
    return session.get(Store, store_id) is not None


def add_card(session: Session, card: GiftCard) -> int:
    """Insert the card; its id."""
    session.add(card)
    session.flush()
    assert card.id is not None
    return card.id


_CODE_KEY = ("lookup_hash", "code_type", "store_id")  # uq_giftcard_codes_lookup


def add_codes(session: Session, card: GiftCard, codes: Sequence[GiftCardCode]) -> list[int]:
    """Insert the card's new codes (in the card's store); their ids, in order.

    Each was checked free, so a row of the same hash and type can only come from a writer that
    won a race for the same code: nothing is inserted, and that is a CONFLICT.
    """
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    ids = []
    for code in codes:
        statement = (
            dialect.insert(_codes)
            .values({**code.model_dump(exclude={"id"}), "giftcard_id": card.id, "store_id": card.store_id})
            .on_conflict_do_nothing(
                index_elements=[_codes.c.lookup_hash, _codes.c.code_type, _codes.c.store_id]
            )
            .returning(_codes.c.id)
        )
        inserted = session.execute(statement).first()
        if inserted is None:
            raise ConflictError("a code of that type already exists")
        ids.append(inserted.id)
    return ids


def set_pin(session: Session, code_id: int, value: str, key_ids: str | None) -> None:
    """Store a new code's PIN (its keyed value binds the code's id, so it follows the insert)."""
    session.execute(update(_codes).where(_codes.c.id == code_id).values(pin_hash=value, pin_key_ids=key_ids))


def card_for_update(session: Session, card_id: int, stores: Stores) -> GiftCard | None:
    """The card if it is in one of ``stores``, locked until the transaction ends (PostgreSQL; SQLite
    holds the write lock). Another store's card is never locked, nor waited for: that would tell."""
    statement = sqlmodel_select(GiftCard).where(GiftCard.id == card_id, *in_stores(GiftCard.store_id, stores))
    return session.exec(statement.with_for_update().execution_options(populate_existing=True)).first()


def live_codes(session: Session, card_id: int) -> list[GiftCardCode]:
    statement = (
        sqlmodel_select(GiftCardCode)
        .where(GiftCardCode.giftcard_id == card_id, GiftCardCode.revoked_at.is_(None))  # type: ignore[union-attr]
        .order_by(GiftCardCode.id)  # type: ignore[arg-type]
    )
    return list(session.exec(statement).all())


def card_rows(session: Session, card_id: int) -> list[Card[StoredCode]]:
    """The card with its live codes, read inside the caller's transaction."""
    rows = session.execute(_card_and_codes(_cards.c.id == card_id)).all()
    return _group(rows)


def add_event(
    session: Session, card: GiftCard, event: str, actor: str | None, now: datetime, detail: str | None = None
) -> None:
    assert card.id is not None  # flushed
    session.add(
        GiftCardEvent(
            giftcard_id=card.id,
            store_id=card.store_id,
            event=event,
            detail=detail,
            actor=actor,
            created_at=now,
        )
    )


def cancel_open_holds(session: Session, card_id: int, now: datetime) -> int:
    """Cancel every AUTHORIZED entry of the card (the card row is locked); how many there were."""
    statement = (
        update(_ledger)
        .where(_ledger.c.giftcard_id == card_id, _ledger.c.status == "AUTHORIZED")
        .values(status="CANCELLED", settled_at=now)
    )
    return int(session.execute(statement).rowcount or 0)  # type: ignore[attr-defined]


def has_completed_entries(session: Session, card_id: int) -> bool:
    statement = (
        select(_ledger.c.id).where(_ledger.c.giftcard_id == card_id, _ledger.c.status == "COMPLETED").limit(1)
    )
    return session.execute(statement).first() is not None
