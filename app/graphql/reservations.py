"""Reserved PHYSICAL code stock: `giftcardReserveCodes` and `giftcardReservations`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from anyio.to_thread import run_sync

from app.domain.reservations import MAX_NAME_LENGTH, RESERVED_CODE_LENGTH, ReservationRequest
from app.entities import Reservation
from app.graphql.context import Context
from app.graphql.mutations import IdempotencyKey
from app.graphql.types import build

REQUEST_NAME = (
    f'The caller\'s name for the batch, e.g. "spring-2027": 1 to {MAX_NAME_LENGTH} printable characters.'
)
AGENCY = (
    f'Free label: the agency the codes are for, e.g. "PrintCo"; 1 to {MAX_NAME_LENGTH} printable characters.'
)


@strawberry.type(
    description="A batch of PHYSICAL codes set aside for printing, owned by the token "
    "subject that reserved them."
)
class CodeReservation:
    id: strawberry.ID = strawberry.field(
        description='The reservation\'s id: an integer as a string, e.g. "12".'
    )
    request_name: str = strawberry.field(description=REQUEST_NAME)
    agency: str = strawberry.field(description=AGENCY)
    single: bool = strawberry.field(
        description="One code for one imminent sale; it lapses an hour after it was reserved if "
        "no card took it."
    )
    count: int = strawberry.field(description="How many codes were reserved.")
    created_at: datetime = strawberry.field(description="When they were reserved.")
    expires_at: datetime | None = strawberry.field(
        description="When a single reservation lapses; null for a batch (it never lapses)."
    )
    codes: list[str] = strawberry.field(
        description=f"The codes ({RESERVED_CODE_LENGTH} characters, the last a check character): in full "
        "only in the giftcardReserveCodes response, masked to their last four characters everywhere else."
    )
    used_count: int = strawberry.field(description="How many of the codes cards have taken.")
    lapsed: bool = strawberry.field(
        description="A single reservation past its expiry whose code no card took: the code is "
        "free for anyone again."
    )


def reservation_type(view: Reservation[str]) -> CodeReservation:
    return build(CodeReservation, view, id=strawberry.ID(str(view.id)), codes=list(view.codes))


@strawberry.type
class ReservationQueries:
    @strawberry.field(
        description="The caller's own code reservations under a request name, oldest first, codes "
        "masked (ReserveGiftCardCodes)."
    )
    async def giftcard_reservations(
        self,
        info: strawberry.Info[Context],
        request_name: Annotated[str, strawberry.argument(description=REQUEST_NAME)],
    ) -> list[CodeReservation] | None:
        views = await info.context.read(
            lambda: info.context.services.reservations.list(info.context.principal, request_name)
        )
        return [reservation_type(view) for view in views]


@strawberry.type
class ReservationMutations:
    @strawberry.mutation(
        description="Reserve PHYSICAL codes for printed cards (ReserveGiftCardCodes). Only the "
        "caller can then give them to cards (giftcardAdd, giftcardEdit). `count` is capped by "
        "GIFTCARDS_MAX_RESERVATION_BATCH (default 500; more is refused); `single: true` needs "
        "count 1 and lapses after an hour if unused. The codes are shown in full only here."
    )
    async def giftcard_reserve_codes(  # noqa: PLR0913  (its arguments are the API's)
        self,
        info: strawberry.Info[Context],
        count: Annotated[int, strawberry.argument(description="How many codes: 1 to the batch cap.")],
        agency: Annotated[str, strawberry.argument(description=AGENCY)],
        request_name: Annotated[str, strawberry.argument(description=REQUEST_NAME)],
        single: Annotated[
            bool | None,
            strawberry.argument(
                description="One code for an imminent sale (count 1); it lapses after an hour."
            ),
        ] = False,
        idempotency_key: IdempotencyKey = None,
        store_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(
                description="The store the codes are reserved in (its codes are unique within it): one of "
                "the token's stores; left out: the token's only store."
            ),
        ] = None,
    ) -> CodeReservation | None:
        request = ReservationRequest(
            count=count, agency=agency, request_name=request_name, single=bool(single), store_id=store_id
        )
        reservations, principal = info.context.services.reservations, info.context.principal
        return reservation_type(await run_sync(reservations.reserve, principal, request, idempotency_key))
