"""The audit trail in the API: the `auditEvents` query (ViewAuditLog), and the field extension that
records refused mutations (a mutation that succeeds is recorded inside its own transaction)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, TypeVar

import strawberry
from anyio.to_thread import run_sync
from strawberry.extensions import FieldExtension
from strawberry.types.base import get_object_definition

from app.domain.audit import AuditEventView, AuditFilter
from app.domain.masking import ShownCard
from app.domain.pages import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from app.errors import ErrorCode, GiftCardError
from app.graphql.context import Context
from app.graphql.descriptions import CARD_ID, CURSOR, PAGE_INFO, After, First
from app.graphql.types import PageInfo, build, connection

log = logging.getLogger("app.graphql")

R = TypeVar("R", bound=type)


class AuditRefusals(FieldExtension):
    """On a mutation field: an error escaping it is recorded with its code (a GiftCardError's own,
    anything else as INTERNAL), then raised again. Counted in a worker thread, like the mutation
    itself, as counting can write the counts of a minute that is over."""

    async def resolve_async(
        self,
        next_: Callable[..., Awaitable[Any]],
        source: Any,
        info: strawberry.Info[Context],
        **kwargs: Any,
    ) -> Any:
        try:
            return await next_(source, info, **kwargs)
        except Exception as exc:
            code = exc.code if isinstance(exc, GiftCardError) else ErrorCode.INTERNAL
            context = info.context
            try:
                await run_sync(context.services.audit.refused, context.principal, info.field_name, code.value)
            except Exception:
                # The caller gets the mutation's own error; a failed audit write must not replace it.
                log.exception(
                    "could not record a refused %s in the audit trail (request %s)",
                    info.field_name,
                    context.request_id,
                )
            raise


def record_disclosures(
    context: Context, cards: Sequence[ShownCard], supplied_code: str | None = None
) -> None:
    """Record the codes ``cards`` show in full that the trail wants (see AuditTrail.disclosures).
    Called in the worker thread that found the cards, so that neither the read nor SQLite's write
    lock holds up the event loop (reads rarely write)."""
    audit = context.services.audit
    if disclosed := audit.disclosures(context.principal, cards, supplied_code=supplied_code):
        audit.record(disclosed)


def audit_mutations(root: R) -> R:
    """Class decorator for the Mutation root: every mutation field gets :class:`AuditRefusals`."""
    for field in get_object_definition(root, strict=True).fields:
        if not any(isinstance(extension, AuditRefusals) for extension in field.extensions):
            field.extensions.append(AuditRefusals())
    return root


@strawberry.input(description="Which audit events to list. Conditions combine with AND.")
class AuditEventFilter:
    subject: str | None = strawberry.field(default=None, description="Only this token subject's events.")
    giftcard_id: strawberry.ID | None = strawberry.field(
        default=None, description=f"Only events about this card. {CARD_ID}"
    )
    action: str | None = strawberry.field(
        default=None,
        description='Only this action: a mutation\'s name (e.g. "giftcardTransAdd") or CODE_DISCLOSED.',
    )
    outcome: str | None = strawberry.field(
        default=None, description="Only this outcome: OK, REPLAYED, or an error code (e.g. FORBIDDEN)."
    )
    occurred_after: datetime | None = strawberry.field(
        default=None, description="Only events at or after this time."
    )
    occurred_before: datetime | None = strawberry.field(
        default=None, description="Only events before this time."
    )
    store_id: strawberry.ID | None = strawberry.field(
        default=None, description="Only events of this one of the token's stores."
    )


@strawberry.type(description="One entry of the append-only audit trail. It never holds a code or a PIN.")
class AuditEvent:
    id: strawberry.ID = strawberry.field(description='The event\'s id: an integer as a string, e.g. "88".')
    occurred_at: datetime = strawberry.field(
        description="When it happened; for refusals, the first refusal the entry counts."
    )
    action: str = strawberry.field(
        description='A mutation\'s name (e.g. "giftcardAdd"), or CODE_DISCLOSED: a code of a type '
        "that is masked without its unmask permission (PERSONAL, SHORT_PERSONAL) was shown in full, "
        "by a mutation's answer, a lookup or a listing; or a code of any type was printed on a "
        "certificate (GET /giftcards/{id}/certificate)."
    )
    outcome: str = strawberry.field(
        description="OK; REPLAYED (an idempotency key's stored answer, sent again); or the error "
        "code the mutation was refused with."
    )
    subject: str | None = strawberry.field(description="The token subject of the caller.")
    giftcard_id: strawberry.ID | None = strawberry.field(
        description="The card, when the event concerns one (not on refusals)."
    )
    field: str | None = strawberry.field(description="For CODE_DISCLOSED: the code type shown.")
    request_id: str | None = strawberry.field(
        description="The X-Request-ID of the request (for refusals, of the first one counted)."
    )
    client_address: str | None = strawberry.field(
        description="The address the request came from (for refusals, null when those counted "
        "came from more than one address)."
    )
    store_id: strawberry.ID | None = strawberry.field(
        description="The store of the card concerned, else of the caller when it acts on one store; "
        "null otherwise (such events are listed only to callers with AllStores)."
    )
    count: int = strawberry.field(
        description="How many events this entry stands for: 1, except for refusals, which are "
        "recorded as one entry per subject, action, outcome and minute (per server process, so "
        "sum the counts of one minute)."
    )


@strawberry.type(description="An audit event, with the cursor that continues behind it.")
class AuditEventEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: AuditEvent = strawberry.field(description="The event.")


@strawberry.type(description="One page of audit events, in the order they were written.")
class AuditEventConnection:
    edges: list[AuditEventEdge] = strawberry.field(description="The events of this page; empty when none.")
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)


def event_type(view: AuditEventView) -> AuditEvent:
    return build(
        AuditEvent,
        view,
        id=strawberry.ID(str(view.id)),
        giftcard_id=None if view.giftcard_id is None else strawberry.ID(str(view.giftcard_id)),
    )


@strawberry.type
class AuditQueries:
    @strawberry.field(
        description="The audit trail page by page (ViewAuditLog), in the order it was written: "
        "every mutation (done, replayed or refused) and every disclosure of a maskable code in "
        "full. Refusals are counted per minute and written once their minute is over. `first`: "
        f"1 to {MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE}); `after`: the endCursor of the "
        "previous page. Events written meanwhile appear on later pages, never twice."
    )
    async def audit_events(
        self,
        info: strawberry.Info[Context],
        first: First = DEFAULT_PAGE_SIZE,
        after: After = None,
        filter: Annotated[
            AuditEventFilter | None, strawberry.argument(description="Which events; left out: all.")
        ] = None,
    ) -> AuditEventConnection | None:
        audit_filter = AuditFilter() if filter is None else build(AuditFilter, filter)
        events, principal = info.context.services.audit.events, info.context.principal
        page = await info.context.read(
            lambda: events(principal, first=first, after=after, audit_filter=audit_filter)
        )
        return connection(AuditEventConnection, AuditEventEdge, page, event_type)
