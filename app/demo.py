"""Demo and benchmark data: a few well-known cards, plus any number of random ones, in bulk.
Balances are written as IMPORT transactions, so each equals the sum of its completed ledger rows.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import TextIO

from sqlalchemy import Connection, bindparam, func, insert, select, update

from app.domain.codes import CodeVault, generate_code, normalise
from app.domain.pins import PinKeys
from app.enums import CardState, CodeType, TransStatus, TransType
from app.models import GiftCard, GiftCardCode, LedgerEntry
from app.services import Services

BATCH = 5000
_CARDS = GiftCard.__table__  # type: ignore[attr-defined]
_CODES = GiftCardCode.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class DemoCard:
    balance: int
    member_id: str | None = None
    physical: str | None = None
    pin: str | None = None
    external: str | None = None
    personal: str | None = None


# The cards a developer can try straight away (README, "Try it").
WELL_KNOWN = (
    DemoCard(balance=2500, physical="G59220000045"),
    DemoCard(balance=1000, physical="G59220000052", pin="4321"),
    DemoCard(balance=5000, member_id="C000000113", physical="G59220000060", personal="K7MNPQ2RSTUV3WXYZ4AB"),
    DemoCard(balance=750, member_id="C000000113", external="EXT-77001234"),
    DemoCard(balance=0, member_id="C000000212", external="EXT-77009999"),
)


def random_cards(count: int) -> Iterator[DemoCard]:
    for index in range(count):
        yield DemoCard(
            balance=1000 + index % 9000,
            member_id=f"M{index:09d}",
            physical="P" + generate_code(15),
            external="X" + generate_code(15),
            personal=generate_code(),
        )


def load(
    services: Services,
    cards: Iterable[DemoCard],
    *,
    codes_out: TextIO | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Insert cards with their codes and an IMPORT ledger row each; returns how many."""
    now, remaining, written = datetime.now(UTC), iter(cards), 0
    with services.engine.begin() as connection:
        while batch := list(islice(remaining, BATCH)):
            _insert(connection, services, batch, now, codes_out)
            written += len(batch)
            if progress:
                progress(written)
    return written


def _insert(
    connection: Connection, services: Services, batch: list[DemoCard], now: datetime, codes_out: TextIO | None
) -> None:
    card_rows = [
        {
            "member_id": card.member_id,
            "currency": "USD",
            "state": (CardState.ACTIVE if card.balance else CardState.PENDING).value,
            "balance": card.balance,
            "created_by": "demo-data",
            "created_at": now,
            "updated_at": now,
        }
        for card in batch
    ]
    # Each row's id comes from the generator (app/ids.py); returned in the rows' order.
    returning = insert(_CARDS).returning(_CARDS.c.id, sort_by_parameter_order=True)
    card_ids = [row[0] for row in connection.execute(returning, card_rows)]
    code_rows, pins_of_rows = [], []
    for card_id, card in zip(card_ids, batch, strict=True):
        for code_type, value in (
            (CodeType.PHYSICAL, card.physical),
            (CodeType.EXTERNAL, card.external),
            (CodeType.PERSONAL, card.personal),
        ):
            if value is not None:
                code_rows.append(_code_row(services.vault, card_id, code_type, value, now))
                pins_of_rows.append(card.pin if code_type is CodeType.PHYSICAL else None)
                if codes_out is not None:
                    codes_out.write(f"{code_type.value}\t{value}\n")
    returning = insert(_CODES).returning(_CODES.c.id, sort_by_parameter_order=True)
    code_ids = [row[0] for row in connection.execute(returning, code_rows)]
    _set_pins(connection, services.pins, zip(code_ids, pins_of_rows, strict=True))
    ledger_rows = [
        _import_row(card_id, card.balance, now)
        for card_id, card in zip(card_ids, batch, strict=True)
        if card.balance
    ]
    if ledger_rows:
        connection.execute(insert(LedgerEntry), ledger_rows)


def _import_row(card_id: int, balance: int, now: datetime) -> dict[str, object]:
    return {
        "giftcard_id": card_id,
        "trans_type": TransType.IMPORT.value,
        "status": TransStatus.COMPLETED.value,
        "amount": balance,
        "balance_after": balance,
        "source_id": "demo-data",
        "created_by": "demo-data",
        "created_at": now,
    }


def _code_row(
    vault: CodeVault, card_id: int, code_type: CodeType, value: str, now: datetime
) -> dict[str, object]:
    sealed = vault.seal(normalise(value), code_type).columns
    return {"giftcard_id": card_id, "code_type": code_type.value, **sealed, "created_at": now}


def _set_pins(connection: Connection, pins: PinKeys, code_pins: Iterable[tuple[int, str | None]]) -> None:
    """PINs bind their code's id, so they are written once the codes have ids."""
    stored = [(code_id, pins.hash(code_id, pin)) for code_id, pin in code_pins if pin is not None]
    values = [{"code_id": code_id, "value": pin.value, "key_ids": pin.key_ids} for code_id, pin in stored]
    if values:
        connection.execute(
            update(_CODES)
            .where(_CODES.c.id == bindparam("code_id"))
            .values(pin_hash=bindparam("value"), pin_key_ids=bindparam("key_ids")),
            values,
        )


def card_count(services: Services) -> int:
    with services.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(GiftCard)).scalar() or 0)


def print_progress(total: int) -> Callable[[int], None]:
    def report(done: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} cards")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return report
