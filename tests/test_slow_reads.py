"""A read that waits on the database holds up its own request only, not the worker's event loop.

Another transaction locks the codes table, so a lookup by code waits on PostgreSQL until the lock
goes. Meanwhile the same application (one event loop, as in a uvicorn worker) answers ``/healthz``
and a query that reads another table (``stores``) at once; the lookup then finds its card.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import Engine, text
from starlette.applications import Starlette

from app.enums import CodeType
from app.http import create_app

pytestmark = pytest.mark.timing  # holds answers to a wall-clock bound

LOCK_SECONDS = 2.0  # how long the codes table stays locked
QUICK = 0.5  # the other requests are answered well within this while the lookup waits
SETTLE = 0.3  # time for the lookup to reach the lock
CODE = "PHYS-0000-1111"
LOOKUP = "query L($code: String!) { giftcard(code: $code) { results { id balance } } }"


async def _timed(client: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    response = await client.request(method, path, **kwargs)
    assert response.status_code == 200, response.text
    return response.json(), time.perf_counter() - started


@contextmanager
def _codes_locked(engine: Engine) -> Iterator[None]:
    """The codes table locked by another transaction for LOCK_SECONDS, let go from another thread
    (an event loop blocked by a waiting read could not let it go)."""
    with engine.connect() as locker:
        locker.execute(text("LOCK TABLE giftcard_codes IN ACCESS EXCLUSIVE MODE"))
        release = threading.Timer(LOCK_SECONDS, locker.rollback)
        release.start()
        try:
            yield
        finally:
            release.join()


async def _while_a_lookup_waits(app: Starlette, engine: Engine, token: str) -> dict[str, Any]:
    """The lookup's answer and time while the codes are locked, and the answers and times of the
    requests sent while it waited."""
    headers = {"authorization": f"Bearer {token}"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app", headers=headers) as client:
            with _codes_locked(engine):
                sent = time.perf_counter()
                lookup = asyncio.create_task(
                    _timed(client, "POST", "/graphql", json={"query": LOOKUP, "variables": {"code": CODE}})
                )
                await asyncio.sleep(SETTLE)  # the lookup is now waiting for the lock
                healthz = await _timed(client, "GET", "/healthz")
                healthz_since_lookup = time.perf_counter() - sent
                stores = await _timed(client, "POST", "/graphql", json={"query": "{ stores { id } }"})
                waiting = not lookup.done()
                found, lookup_seconds = await lookup
    return {
        "found": found,
        "lookup": lookup_seconds,
        "healthz": healthz,
        "healthz_since_lookup": healthz_since_lookup,
        "stores": stores,
        "waiting": waiting,
    }


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_a_lookup_waiting_on_a_lock_holds_up_no_other_request(settings, services, seed, mint):
    # given a card, and a token that may find it by code and list stores
    card_id = seed({CodeType.PHYSICAL: CODE}, balance=1250)
    token = mint(permissions=["FindGiftCardByCode", "UsePhysicalGiftCardCodes", "ListGiftCards"])
    app = create_app(settings, services)

    # when the card is looked up while another transaction holds the codes table locked
    seen = asyncio.run(_while_a_lookup_waits(app, services.engine, token))

    # then the lookup waited for the lock, and found the card once it went
    print({key: value for key, value in seen.items() if key != "found"})
    assert seen["waiting"]
    assert seen["lookup"] >= LOCK_SECONDS - 0.5
    assert seen["found"] == {"data": {"giftcard": {"results": [{"id": str(card_id), "balance": "12.50"}]}}}
    # and meanwhile the health check and a query of another table were answered at once
    health, health_seconds = seen["healthz"]
    assert health == {"status": "ok"}
    assert health_seconds < QUICK
    assert seen["healthz_since_lookup"] < SETTLE + QUICK  # the loop was never held up meanwhile
    stores, stores_seconds = seen["stores"]
    assert stores == {"data": {"stores": [{"id": "default"}]}}
    assert stores_seconds < QUICK
