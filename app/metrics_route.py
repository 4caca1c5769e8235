"""``/metrics``: the Prometheus scrape (app.metrics), for callers on the loopback interface and for
anyone presenting ``GIFTCARDS_METRICS_TOKEN`` as a bearer token when it is set."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable
from functools import partial
from pathlib import Path

from anyio.to_thread import run_sync
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.errors import ErrorCode
from app.metrics import Metrics
from app.middleware import error_response
from app.observe import Sink
from app.services import Services
from app.store.balances import outstanding_by_currency

PATH = "/metrics"
_CHALLENGE = 'Bearer realm="metrics"'


def metrics_route(
    services: Services, routes: Iterable[BaseRoute], root_fields: Iterable[str], multiprocess_dir: Path | None
) -> tuple[Route, Sink]:
    """The scrape's route and the sink that counts each answered request; ``routes`` are the app's
    others (their paths are the route labels), ``multiprocess_dir`` the workers' shared directory."""
    metrics = Metrics(
        routes=[*(getattr(route, "path", "") for route in routes), PATH],
        root_fields=root_fields,
        balances=partial(outstanding_by_currency, services.engine),
        multiprocess_dir=multiprocess_dir,
    )
    metrics.watch_pool(services.engine)
    services.events.listener = metrics.note
    _watch_batches(services, metrics)
    token = services.settings.metrics_token
    secret = None if token is None else token.get_secret_value()

    async def scrape(request: Request) -> Response:
        host = request.client.host if request.client else None
        refusal = refuse_scrape(host, request.headers.get("authorization"), secret)
        if refusal is not None:
            return refusal
        return Response(await run_sync(metrics.render), headers={"content-type": CONTENT_TYPE_LATEST})

    return Route(PATH, scrape, methods=["GET"]), metrics.sink


def refuse_scrape(host: str | None, authorization: str | None, token: str | None) -> Response | None:
    """None when the caller may scrape: on loopback, or with the token. Otherwise 403 when no token
    is configured (there is no way in), 401 with a challenge when none or a wrong one is presented."""
    if is_loopback(host):
        return None
    if token is None:
        return error_response(
            403, "metrics are served on loopback only; set GIFTCARDS_METRICS_TOKEN", ErrorCode.FORBIDDEN
        )
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode()):
        return None
    challenge = _CHALLENGE + (', error="invalid_token"' if authorization else "")
    return error_response(
        401,
        "a bearer token for the metrics is required",
        ErrorCode.UNAUTHENTICATED,
        {"www-authenticate": challenge},
    )


def is_loopback(host: str | None) -> bool:
    """127.0.0.0/8 and ::1 (also as an IPv4-mapped address); anything else, names included, is not."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _watch_batches(services: Services, metrics: Metrics) -> None:
    """Count each group commit's size (app.domain.batching), when batching is on."""
    if (batcher := services.mutations.batcher) is not None:
        batcher.observer = metrics.instruments.batch_sizes.observe
