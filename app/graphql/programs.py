"""A store's programs (ManagePrograms): `giftcardProgramAdd`, `giftcardProgramEdit` and
`giftcardPrograms`. Amounts cross as decimal strings in the program's currency."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from anyio.to_thread import run_sync

from app.domain.money import format_amount
from app.domain.program_input import MAX_DENOMINATIONS, MAX_EXPIRY_DAYS, ProgramInput
from app.domain.program_rules import entropy_bits
from app.domain.programs import ProgramEdit
from app.entities import CodeFormat, Program
from app.graphql.context import Context
from app.graphql.enums import ExpiryKind
from app.graphql.mutations import IdempotencyKey
from app.graphql.types import build

PROGRAM_ID = 'The program\'s id: an integer as a string, e.g. "7".'
CODE = (
    'The store\'s short code for the program, e.g. "GC": 1 to 16 capital letters, digits, "_" or "-"; '
    "unique within the store."
)
NAME = "A name for people: 1 to 128 printable characters."
CURRENCY = (
    'ISO 4217 code of the currency of the program\'s cards, e.g. "USD". Frozen once a card follows '
    "the program."
)
STORE_ID = (
    "The store: one of the token's stores. Needed when the token acts on several stores (or on every "
    "store, with AllStores); one the token cannot act on is answered as an unknown store (NOT_FOUND)."
)
DENOMINATIONS = (
    f"The only values a card may be issued with (1 to {MAX_DENOMINATIONS} decimal strings, e.g. "
    '["10.00", "25.00"]); null for any value within minValue and maxValue. Not together with them.'
)
MIN_VALUE = 'The least value a card may be issued with, e.g. "5.00"; null for no minimum.'
MAX_VALUE = "The most value a card may be issued with; null for none (maxBalance still holds)."
CHANGES = "Whether value may be loaded onto a card after it was issued."
MAX_BALANCE = "The most a card may hold; null for GIFTCARDS_MAX_BALANCE, which it may not exceed."
MAX_DAILY_LOAD = "The most that may be loaded onto one card per UTC day; null for no such limit."
DEFAULT = (
    "Whether cards of the store issued without a programId follow this program. One per store: "
    "making one the default makes the previous one not."
)


@strawberry.type(description="How a program's generated codes look.")
class GiftCardCodeFormat:
    prefix: str = strawberry.field(description="The characters every generated code starts with.")
    length: int = strawberry.field(description="The code's length, prefix and check character included.")
    check_character: bool = strawberry.field(
        description="Whether the last character is a check character (Luhn mod 32) that reveals "
        "every mistyped character and most swaps."
    )
    entropy_bits: int = strawberry.field(
        description="Bits of entropy of a generated code: 5 for each random character (at least 64)."
    )


@strawberry.type(description="When a program's cards expire.")
class GiftCardExpiry:
    kind: ExpiryKind = strawberry.field(description="Never, or a period after issue or last activity.")
    days: int | None = strawberry.field(description="The period in days; null when kind is NONE.")


@strawberry.type(description="A store's rules for its cards: currency, code format, values, expiry, limits.")
class GiftCardProgram:
    id: strawberry.ID = strawberry.field(description=PROGRAM_ID)
    store_id: strawberry.ID = strawberry.field(description="The store the program belongs to.")
    code: str = strawberry.field(description=CODE)
    name: str = strawberry.field(description=NAME)
    currency: str = strawberry.field(description=CURRENCY)
    code_format: GiftCardCodeFormat = strawberry.field(
        description="How generated codes look. Frozen once a card follows the program."
    )
    denominations: list[str] | None = strawberry.field(description=DENOMINATIONS)
    min_value: str | None = strawberry.field(description=MIN_VALUE)
    max_value: str | None = strawberry.field(description=MAX_VALUE)
    value_changes_allowed: bool = strawberry.field(description=CHANGES)
    expiry: GiftCardExpiry = strawberry.field(description="When the program's cards expire.")
    max_balance: str | None = strawberry.field(description=MAX_BALANCE)
    max_daily_load: str | None = strawberry.field(description=MAX_DAILY_LOAD)
    is_default: bool = strawberry.field(description=DEFAULT)
    created_at: datetime = strawberry.field(description="When the program was added.")
    updated_at: datetime = strawberry.field(description="When it last changed.")


def program_type(view: Program) -> GiftCardProgram:
    def shown(minor: int | None) -> str | None:
        return None if minor is None else format_amount(minor, view.currency)

    code_format = view.code_format
    return build(
        GiftCardProgram,
        view,
        id=strawberry.ID(str(view.id)),
        store_id=strawberry.ID(view.store_id),
        code_format=build(GiftCardCodeFormat, code_format, entropy_bits=entropy_bits(code_format)),
        denominations=[format_amount(value, view.currency) for value in view.denominations] or None,
        min_value=shown(view.min_value),
        max_value=shown(view.max_value),
        expiry=GiftCardExpiry(kind=view.expiry_kind, days=view.expiry_days),
        max_balance=shown(view.max_balance),
        max_daily_load=shown(view.max_daily_load),
    )


@strawberry.input(description="How generated codes look; at least 64 bits of entropy are required.")
class GiftCardCodeFormatInput:
    prefix: str = strawberry.field(
        default="",
        description="Up to 16 characters every code starts with, from 23456789ABCDEFGHJKLMNPQRSTUVWXYZ "
        "(no 0, 1, I or O, which read as one another).",
    )
    length: int = strawberry.field(
        description="4 to 64 characters, prefix and check character included; the random characters "
        "left (5 bits each) must give at least 64 bits, e.g. 13 of them."
    )
    check_character: bool = strawberry.field(
        default=True, description="End each code with a check character (Luhn mod 32)."
    )


@strawberry.input(description="When cards expire.")
class GiftCardExpiryInput:
    kind: ExpiryKind = strawberry.field(description="Never, or a period after issue or last activity.")
    days: int | None = strawberry.field(
        default=None,
        description=f"The period: GIFTCARDS_MIN_EXPIRY_DAYS (default 1825) to {MAX_EXPIRY_DAYS} days; "
        "null when kind is NONE.",
    )


@strawberry.input(description="A new program. Amounts are decimal strings in its currency.")
class GiftCardProgramInput:
    code: str = strawberry.field(description=CODE)
    name: str = strawberry.field(description=NAME)
    currency: str = strawberry.field(description=CURRENCY)
    code_format: GiftCardCodeFormatInput = strawberry.field(description="How generated codes look.")
    denominations: list[str] | None = strawberry.field(default=None, description=DENOMINATIONS)
    min_value: str | None = strawberry.field(default=None, description=MIN_VALUE)
    max_value: str | None = strawberry.field(default=None, description=MAX_VALUE)
    value_changes_allowed: bool = strawberry.field(default=True, description=CHANGES)
    expiry: GiftCardExpiryInput | None = strawberry.field(
        default=None, description="When cards expire; they never do when left out."
    )
    max_balance: str | None = strawberry.field(default=None, description=MAX_BALANCE)
    max_daily_load: str | None = strawberry.field(default=None, description=MAX_DAILY_LOAD)
    is_default: bool = strawberry.field(default=False, description=DEFAULT)


_KEEP = "Left out: unchanged."
_CLEAR = "Left out: unchanged; null: no such rule."


@strawberry.input(
    description="What to change on a program: only the fields given. The result is checked whole, as "
    "when it was added; currency and codeFormat are frozen once a card follows the program."
)
class GiftCardProgramEditInput:
    code: str | None = strawberry.field(default=strawberry.UNSET, description=f"{CODE} {_KEEP}")
    name: str | None = strawberry.field(default=strawberry.UNSET, description=f"{NAME} {_KEEP}")
    currency: str | None = strawberry.field(default=strawberry.UNSET, description=f"{CURRENCY} {_KEEP}")
    code_format: GiftCardCodeFormatInput | None = strawberry.field(
        default=strawberry.UNSET, description=f"How generated codes look. {_KEEP}"
    )
    denominations: list[str] | None = strawberry.field(
        default=strawberry.UNSET, description=f"{DENOMINATIONS} {_CLEAR}"
    )
    min_value: str | None = strawberry.field(default=strawberry.UNSET, description=f"{MIN_VALUE} {_CLEAR}")
    max_value: str | None = strawberry.field(default=strawberry.UNSET, description=f"{MAX_VALUE} {_CLEAR}")
    value_changes_allowed: bool | None = strawberry.field(
        default=strawberry.UNSET, description=f"{CHANGES} {_KEEP}"
    )
    expiry: GiftCardExpiryInput | None = strawberry.field(
        default=strawberry.UNSET, description=f"When cards expire. {_KEEP} null: never."
    )
    max_balance: str | None = strawberry.field(
        default=strawberry.UNSET, description=f"{MAX_BALANCE} {_CLEAR}"
    )
    max_daily_load: str | None = strawberry.field(
        default=strawberry.UNSET, description=f"{MAX_DAILY_LOAD} {_CLEAR}"
    )
    is_default: bool | None = strawberry.field(default=strawberry.UNSET, description=f"{DEFAULT} {_KEEP}")


def _code_format(given: GiftCardCodeFormatInput | None) -> CodeFormat | None:
    return None if given is None else CodeFormat(given.prefix, given.length, given.check_character)


def _settings(given: GiftCardProgramInput | GiftCardProgramEditInput) -> dict[str, Any]:
    """The fields given, as the domain names them (the nested inputs taken apart)."""
    values = {name: value for name, value in vars(given).items() if value is not strawberry.UNSET}
    if "code_format" in values:
        values["code_format"] = _code_format(values["code_format"])
    if "denominations" in values and values["denominations"] is not None:
        values["denominations"] = tuple(values["denominations"])
    if "expiry" in values:
        expiry = values.pop("expiry")
        values["expiry_kind"] = ExpiryKind.NONE if expiry is None else expiry.kind
        values["expiry_days"] = None if expiry is None else expiry.days
    return values


ProgramStoreId = Annotated[strawberry.ID | None, strawberry.argument(description=STORE_ID)]


@strawberry.type
class ProgramQueries:
    @strawberry.field(description="The programs of the token's stores, or of one of them (ManagePrograms).")
    async def giftcard_programs(
        self, info: strawberry.Info[Context], store_id: ProgramStoreId = None
    ) -> list[GiftCardProgram] | None:
        programs = info.context.services.programs
        store = None if store_id is None else str(store_id)
        views = await info.context.read(lambda: programs.list(info.context.principal, store))
        return [program_type(view) for view in views]


@strawberry.type
class ProgramMutations:
    @strawberry.mutation(description="Add a program to one of the token's stores (ManagePrograms).")
    async def giftcard_program_add(
        self,
        info: strawberry.Info[Context],
        program: Annotated[GiftCardProgramInput, strawberry.argument(description="The new program.")],
        store_id: ProgramStoreId = None,
        idempotency_key: IdempotencyKey = None,
    ) -> GiftCardProgram | None:
        given = ProgramInput(**_settings(program))
        store = None if store_id is None else str(store_id)
        programs, principal = info.context.services.programs, info.context.principal
        return program_type(await run_sync(programs.add, principal, given, store, idempotency_key))

    @strawberry.mutation(
        description="Change a program of one of the token's stores (ManagePrograms). Cards already "
        "issued keep their codes and values; the new rules apply from now on."
    )
    async def giftcard_program_edit(
        self,
        info: strawberry.Info[Context],
        id: Annotated[strawberry.ID, strawberry.argument(description=PROGRAM_ID)],
        program: Annotated[
            GiftCardProgramEditInput, strawberry.argument(description="What to change on it.")
        ],
        idempotency_key: IdempotencyKey = None,
    ) -> GiftCardProgram | None:
        edit = ProgramEdit(str(id), _settings(program))
        programs, principal = info.context.services.programs, info.context.principal
        return program_type(await run_sync(programs.edit, principal, edit, idempotency_key))
