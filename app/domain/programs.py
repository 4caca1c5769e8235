"""A store's programs (DESIGN §11), managed behind ManagePrograms: add, edit, list, always within the
caller's stores (another store's program answers as a missing one). Currency and code format are
frozen once a card follows the program: its cards' amounts and codes were made under them."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from app.domain.mutations import Mutation, MutationRunner
from app.domain.program_input import ProgramInput, ProgramLimits, input_of, program_columns
from app.domain.scoping import NO_SUCH_STORE, home_store
from app.entities import Card, Program
from app.enums import Operation
from app.errors import BadUserInputError, ConflictError, NotFoundError
from app.ids import MAX_ID
from app.policy import Permission, Principal
from app.store import programs as store
from app.store.cards import store_exists
from app.store.programs import ProgramStore
from app.stores import validate_store_id

_PROGRAM_ID = re.compile(r"[0-9]{1,19}")
# Fields an edit may not change while cards follow the program.
FROZEN = ("currency", "code_format")
# Settings in minor units of the program's currency.
AMOUNTS = ("denominations", "min_value", "max_value", "max_balance", "max_daily_load")
# Settings a null clears (the program then sets no such rule); the others always have a value.
CLEARABLE = frozenset(
    {"denominations", "min_value", "max_value", "expiry_days", "max_balance", "max_daily_load"}
)


@dataclass(frozen=True)
class NewProgram:
    """What giftcardProgramAdd asked: the program, and the store it goes to."""

    store_id: str
    program: ProgramInput


@dataclass(frozen=True)
class ProgramEdit:
    """What to change on a program: only the fields given (a None clears an optional setting)."""

    program_id: str
    changes: dict[str, Any]


def parse_program_id(text: str, field: str = "id") -> int:
    if not _PROGRAM_ID.fullmatch(text) or not 0 < int(text) <= MAX_ID:
        raise BadUserInputError(f"{field}: a program id is an integer from 1 to {MAX_ID}", field=field)
    return int(text)


def _missing_program() -> NotFoundError:
    return NotFoundError("id: no such program", field="id")


@dataclass(frozen=True)
class Programs:
    """Managing programs (in the mutation runner) and listing them."""

    runner: MutationRunner
    reads: ProgramStore
    limits: ProgramLimits

    def add(
        self, principal: Principal, given: ProgramInput, store_id: str | None = None, key: str | None = None
    ) -> Program:
        """A new program of the caller's store (``store_id`` among its stores)."""
        principal.require(Permission.MANAGE_PROGRAMS)
        target = home_store(principal, store_id)
        columns = program_columns(given, self.limits)
        request = NewProgram(target, given)

        def work(session: Session) -> Program:
            if not store_exists(session, target):
                raise NotFoundError(NO_SUCH_STORE, field="store_id")
            return store.add_program(session, target, columns, datetime.now(UTC))

        mutation = Mutation(Operation.ADD_PROGRAM.value, request, Program, key)
        return self.runner.run(principal, mutation, work)

    def edit(self, principal: Principal, edit: ProgramEdit, key: str | None = None) -> Program:
        """``edit.changes`` over the program, checked again whole."""
        principal.require(Permission.MANAGE_PROGRAMS)
        program_id = parse_program_id(edit.program_id)
        stores = principal.store_ids()
        _check_changes(edit.changes)

        def work(session: Session) -> Program:
            program = store.find_program(session, program_id, stores, lock=True)
            if program is None:
                raise _missing_program()
            _check_restated(program, edit.changes)
            given = dataclasses.replace(input_of(program), **edit.changes)
            columns = program_columns(given, self.limits)
            _check_frozen(session, program, given)
            return store.edit_program(session, program, columns, datetime.now(UTC))

        mutation = Mutation(Operation.EDIT_PROGRAM.value, edit, Program, key)
        return self.runner.run(principal, mutation, work)

    def list(self, principal: Principal, store_id: str | None = None) -> list[Program]:
        """The programs of the caller's stores, or of ``store_id`` (one of them)."""
        principal.require(Permission.MANAGE_PROGRAMS)
        stores = principal.store_ids()
        if store_id is None:
            return self.reads.list(stores)
        validate_store_id(store_id, "store_id")
        if (stores is not None and store_id not in stores) or not self.reads.store_exists(store_id):
            raise NotFoundError(NO_SUCH_STORE, field="store_id")
        return self.reads.list((store_id,))

    def of_card(self, principal: Principal, card: Card[Any]) -> Program | None:
        """The program a card the caller sees follows (ListGiftCards: its rules are the operator's)."""
        principal.require(Permission.LIST_GIFT_CARDS)
        return None if card.program_id is None else self.reads.get(card.program_id)


def program_for_card(session: Session, store_id: str, program_id: str | None) -> Program | None:
    """The program a new card of ``store_id`` follows, in the card's transaction: ``program_id``'s
    (NOT_FOUND naming programId unless the store has it), else the store's default; None when the
    store has no default. Share-locked, so an edit of its frozen fields waits for the card."""
    if program_id is None:
        return store.default_program(session, store_id)
    found = store.find_program(session, parse_program_id(program_id, "program_id"), (store_id,), share=True)
    if found is None:
        raise NotFoundError("programId: the store has no such program", field="program_id")
    return found


def _check_changes(changes: dict[str, Any]) -> None:
    settings = {field.name for field in dataclasses.fields(ProgramInput)}
    for name, value in sorted(changes.items()):
        if name not in settings:
            raise BadUserInputError(f"{name}: not a program setting", field=name)
        if value is None and name not in CLEARABLE:
            raise BadUserInputError(f"{name}: cannot be null (leave it out to keep it)", field=name)


def _check_restated(program: Program, changes: dict[str, Any]) -> None:
    """A new currency needs every amount the program sets given again (or cleared): "25.00" kept
    from USD would otherwise be read as 25 JPY."""
    if changes.get("currency", program.currency) == program.currency:
        return
    for name in AMOUNTS:
        if getattr(program, name) not in (None, ()) and name not in changes:
            raise BadUserInputError(
                f"{name}: the currency changes, so give it again in {changes['currency']} (or null)",
                field=name,
            )


def _check_frozen(session: Session, program: Program, given: ProgramInput) -> None:
    """CONFLICT when the edit changes the currency or code format of a program cards follow: their
    balances are in that currency and their codes in that format, so it would misdescribe them."""
    changed = [name for name in FROZEN if getattr(given, name) != getattr(program, name)]
    if changed and store.has_cards(session, program.id):
        raise ConflictError(
            f"{changed[0]}: the program has cards, so its currency and code format no longer change "
            "(add a new program for new ones)",
            field=changed[0],
        )
