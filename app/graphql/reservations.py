"""Reserved PHYSICAL code stock: `giftcardReserveCodes` and `giftcardReservations`."""

from __future__ import annotations

from datetime import datetime

import strawberry
from anyio.to_thread import run_sync

from app.domain.reservations import RESERVED_CODE_LENGTH, ReservationRequest
from app.entities import Reservation
from app.graphql.context import Context
from app.graphql.mutations import IdempotencyKey
from app.graphql.types import build


@strawberry.type(
    description="A batch of PHYSICAL codes set aside for printing, owned by the token "
    "subject that reserved them."
)
class CodeReservation:
    id: strawberry.ID
    request_name: str
    agency: str
    single: bool = strawberry.field(
        description="One code for one imminent sale; it lapses an hour after it was reserved if "
        "no card took it."
    )
    count: int
    created_at: datetime
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
    def giftcard_reservations(
        self, info: strawberry.Info[Context], request_name: str
    ) -> list[CodeReservation] | None:
        # Sync on purpose: two indexed queries on a pooled connection.
        views = info.context.services.reservations.list(info.context.principal, request_name)
        return [reservation_type(view) for view in views]


@strawberry.type
class ReservationMutations:
    @strawberry.mutation(
        description="Reserve PHYSICAL codes for printed cards (ReserveGiftCardCodes). Only the "
        "caller can then give them to cards (giftcardAdd, giftcardEdit). `count` is capped by "
        "GIFTCARDS_MAX_RESERVATION_BATCH (default 500; more is refused); `single: true` needs "
        "count 1 and lapses after an hour if unused. The codes are shown in full only here."
    )
    async def giftcard_reserve_codes(
        self,
        info: strawberry.Info[Context],
        count: int,
        agency: str,
        request_name: str,
        single: bool | None = False,
        idempotency_key: IdempotencyKey = None,
    ) -> CodeReservation | None:
        request = ReservationRequest(
            count=count, agency=agency, request_name=request_name, single=bool(single)
        )
        reservations, principal = info.context.services.reservations, info.context.principal
        return reservation_type(await run_sync(reservations.reserve, principal, request, idempotency_key))
