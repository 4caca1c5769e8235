"""Card queries: lookups by code hash, id and member; inserting a card with its codes.

Reads on the hot path (lookups) run prebuilt SQLAlchemy Core statements, compiled once for the
engine's dialect, on a raw pooled DBAPI connection: building an ORM query costs far more than the
query itself. Writes go through the ORM session of a :class:`~app.db.UnitOfWork`.

A code is looked up by its hash under every lookup key of the ring (``lookup_hash IN (…)``), so
rows not yet moved to the current key by a rotation are still found.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, and_, bindparam, literal_column, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import BindParameter
from sqlmodel import Session
from sqlmodel import select as sqlmodel_select

from app.errors import ConflictError
from app.models import GiftCard, GiftCardCode, GiftCardEvent, LedgerEntry

_cards = GiftCard.__table__  # type: ignore[attr-defined]
_codes = GiftCardCode.__table__  # type: ignore[attr-defined]
_ledger = LedgerEntry.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class CodeRow:
    id: int
    code_type: str
    ciphertext: bytes
    key_id: str
    last4: str
    expires_on: date | None


@dataclass(slots=True)
class CardRow:
    id: int
    member_id: str | None
    currency: str
    state: str
    balance: int
    created_at: datetime
    updated_at: datetime
    created_by: str | None
    usable_from: datetime | None
    expires_at: datetime | None
    note: str | None
    source_id: str | None
    ref_no: str | None
    codes: list[CodeRow]


# The columns behind CardRow and CodeRow, in field order; queries select them in this order.
CARD_COLUMNS = tuple(
    _cards.c[name]
    for name in (
        "id",
        "member_id",
        "currency",
        "state",
        "balance",
        "created_at",
        "updated_at",
        "created_by",
        "usable_from",
        "expires_at",
        "note",
        "source_id",
        "ref_no",
    )
)
CODE_COLUMN_NAMES = ("id", "code_type", "ciphertext", "key_id", "last4", "expires_on")


@dataclass(frozen=True, slots=True)
class CodeMatch:
    """A live code that matched a lookup hash, and the card it belongs to."""

    code_type: str
    expires_on: date | None
    card: CardRow


class _Prepared:
    """A Core statement compiled once; executed on a raw DBAPI cursor."""

    def __init__(self, statement: Select[Any], engine: Engine) -> None:
        compiled = statement.compile(dialect=engine.dialect)
        self.sql = compiled.string
        self._order = compiled.positiontup if compiled.positional else None

    def run(self, connection: Any, **params: Any) -> list[tuple[Any, ...]]:
        args = tuple(params[name] for name in self._order) if self._order is not None else params
        cursor = connection.cursor()
        try:
            cursor.execute(self.sql, args)
            return cursor.fetchall()
        finally:
            cursor.close()


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
                live_codes,
                and_(live_codes.c.giftcard_id == _cards.c.id, live_codes.c.revoked_at.is_(None)),
            )
        )
        .where(card_filter)
        .order_by(_cards.c.id, live_codes.c.id)
    )


class CardStore:
    """Read queries over one engine; statements are compiled when the store is made."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # One statement per number of lookup keys (a process's keyring has a fixed size).
        self._by_code: dict[int, _Prepared] = {}
        self._prepare_by_code(1)
        self._by_id = _Prepared(_card_and_codes(_cards.c.id == bindparam("id")), engine)
        self._by_member = _Prepared(_card_and_codes(_cards.c.member_id == bindparam("member")), engine)
        self._ping = _Prepared(select(literal_column("1")), engine)

    @contextmanager
    def connection(self) -> Iterator[Any]:
        connection = self.engine.raw_connection()
        try:
            yield connection
        finally:
            connection.close()  # back to the pool, which rolls back

    def _prepare_by_code(self, count: int) -> _Prepared:
        matched = _codes.alias("m")
        hashes: list[BindParameter[bytes]] = [bindparam(f"h{index}") for index in range(count)]
        by_hash = matched.c.lookup_hash == hashes[0] if count == 1 else matched.c.lookup_hash.in_(hashes)
        by_code = (
            _card_and_codes(and_(by_hash, matched.c.revoked_at.is_(None)))
            .add_columns(matched.c.code_type, matched.c.expires_on)
            .join(matched, matched.c.giftcard_id == _cards.c.id)
        )
        prepared = self._by_code[count] = _Prepared(by_code, self.engine)
        return prepared

    def find_by_code_hash(self, lookup_hashes: Sequence[bytes]) -> list[CodeMatch]:
        """Live codes whose hash is one of ``lookup_hashes`` (a code's hash under each lookup key)."""
        count = len(lookup_hashes)
        prepared = self._by_code.get(count) or self._prepare_by_code(count)
        params = {f"h{index}": value for index, value in enumerate(lookup_hashes)}
        with self.connection() as connection:
            rows = prepared.run(connection, **params)
        matches: dict[tuple[str, int], CodeMatch] = {}
        for row in rows:
            key = (row[_MATCHED_TYPE], row[_CARD_ID])
            match = matches.get(key)
            if match is None:
                match = matches[key] = CodeMatch(
                    row[_MATCHED_TYPE], _as_date(row[_MATCHED_EXPIRES]), card_from_row(row)
                )
            match.card.codes.append(code_from_row(row, _CODE_ID))
        return list(matches.values())

    def find_by_id(self, card_id: int) -> list[CardRow]:
        with self.connection() as connection:
            return _group(self._by_id.run(connection, id=card_id))

    def find_by_member(self, member_id: str) -> list[CardRow]:
        with self.connection() as connection:
            return _group(self._by_member.run(connection, member=member_id))

    def ping(self) -> None:
        with self.connection() as connection:
            self._ping.run(connection)


def card_from_row(row: Sequence[Any]) -> CardRow:
    """A CardRow (without codes) from a row that starts with CARD_COLUMNS."""
    return CardRow(
        id=row[0],
        member_id=row[1],
        currency=row[2],
        state=row[3],
        balance=row[4],
        created_at=_as_datetime(row[5]),
        updated_at=_as_datetime(row[6]),
        created_by=row[7],
        usable_from=_as_optional_datetime(row[8]),
        expires_at=_as_optional_datetime(row[9]),
        note=row[10],
        source_id=row[11],
        ref_no=row[12],
        codes=[],
    )


def code_from_row(row: Sequence[Any], offset: int = 0) -> CodeRow:
    """A CodeRow from the CODE_COLUMN_NAMES columns of a row, starting at ``offset``."""
    return CodeRow(
        id=row[offset],
        code_type=row[offset + 1],
        ciphertext=bytes(row[offset + 2]),
        key_id=row[offset + 3],
        last4=row[offset + 4],
        expires_on=_as_date(row[offset + 5]),
    )


def _group(rows: list[tuple[Any, ...]]) -> list[CardRow]:
    cards: dict[int, CardRow] = {}
    for row in rows:
        card = cards.get(row[_CARD_ID])
        if card is None:
            card = cards[row[_CARD_ID]] = card_from_row(row)
        if row[_CODE_ID] is not None:
            card.codes.append(code_from_row(row, _CODE_ID))
    return list(cards.values())


# SQLite hands dates and times back as ISO text on a raw connection; PostgreSQL as objects.
def _as_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(value)


def _as_datetime(value: Any) -> datetime:
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _as_optional_datetime(value: Any) -> datetime | None:
    return None if value is None else _as_datetime(value)


# --- writes (inside a unit of work) -----------------------------------------------------------


def code_hash_taken(session: Session, lookup_hashes: Sequence[bytes], code_type: str) -> bool:
    """Whether a code of this type (live or revoked) has one of the hashes (one per lookup key)."""
    statement = (
        select(_codes.c.id)
        .where(_codes.c.lookup_hash.in_(list(lookup_hashes)), _codes.c.code_type == code_type)
        .limit(1)
    )
    return session.execute(statement).first() is not None


def add_card(session: Session, card: GiftCard, codes: list[GiftCardCode]) -> GiftCard:
    session.add(card)
    session.flush()
    add_codes(session, card, codes)
    return card


def add_codes(session: Session, card: GiftCard, codes: list[GiftCardCode]) -> None:
    try:
        for code in codes:
            code.giftcard_id = card.id
            session.add(code)
        session.flush()
    except IntegrityError as exc:
        if "uq_giftcard_codes_lookup" in str(exc.orig) or "giftcard_codes.lookup_hash" in str(exc.orig):
            # Lost a race with another writer of the same code.
            raise ConflictError("a code of that type already exists") from None
        raise


def card_for_update(session: Session, card_id: int) -> GiftCard | None:
    """The card, locked until the transaction ends (PostgreSQL; SQLite holds the write lock)."""
    return session.get(GiftCard, card_id, with_for_update=True)


def live_codes(session: Session, card_id: int) -> list[GiftCardCode]:
    statement = (
        sqlmodel_select(GiftCardCode)
        .where(GiftCardCode.giftcard_id == card_id, GiftCardCode.revoked_at.is_(None))  # type: ignore[union-attr]
        .order_by(GiftCardCode.id)  # type: ignore[arg-type]
    )
    return list(session.exec(statement).all())


def card_rows(session: Session, card_id: int) -> list[CardRow]:
    """The card with its live codes, read inside the caller's transaction."""
    rows = session.execute(_card_and_codes(_cards.c.id == card_id)).all()
    return _group([tuple(row) for row in rows])


def add_event(
    session: Session, card_id: int, event: str, actor: str | None, now: datetime, detail: str | None = None
) -> None:
    session.add(GiftCardEvent(giftcard_id=card_id, event=event, detail=detail, actor=actor, created_at=now))


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
