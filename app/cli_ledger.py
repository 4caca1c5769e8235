"""The ``giftcards ledger verify`` command: every balance recomputed from the ledger, streamed (the
cards and their sums arrive in batches), with progress on stderr and the rate at the end."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

from app.config import Settings

SHOWN_DIFFERENCES = 100  # differences printed; the count covers all of them
PROGRESS_EVERY = 2.0  # seconds between progress lines


def progress_printer(started: float) -> Callable[[int], None]:
    """Prints the cards checked so far and their rate, at most every PROGRESS_EVERY seconds."""
    last = started

    def report(checked: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY:
            last = now
            rate = checked / (now - started)
            print(f"ledger verify: {checked:,} cards checked ({rate:,.0f}/s)", file=sys.stderr, flush=True)

    return report


def verify_ledger(settings: Settings) -> int:
    """Checks the ledger and prints what disagrees; 1 when anything does."""
    from app import db
    from app.store import ledger

    engine = db.create_db_engine(settings)
    started = time.monotonic()
    try:
        db.check_schema(engine)
        progress = progress_printer(started)
        result = ledger.check(engine, datetime.now(UTC), keep=SHOWN_DIFFERENCES, progress=progress)
    finally:
        engine.dispose()
    elapsed = max(time.monotonic() - started, 1e-9)
    for diff in result.differences:
        print(
            f"card {diff.giftcard_id}: stored balance {diff.stored_balance}, ledger says "
            f"{diff.ledger_balance}, open holds {diff.held} (minor units)"
        )
    if result.found > len(result.differences):
        print(f"… and {result.found - len(result.differences)} more cards that disagree")
    print(f"ledger verify: {result.checked} cards checked, {result.found} differences")
    rate = f"{result.checked / elapsed:,.0f} cards/s"
    print(f"ledger verify: {result.checked:,} cards in {elapsed:.1f}s ({rate})", file=sys.stderr)
    return 1 if result.found else 0
