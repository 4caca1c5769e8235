"""The typed context every resolver receives."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from app.policy import Principal
from app.reader_threads import ReaderThreads
from app.services import Services

T = TypeVar("T")

# This process's threads for resolvers' reads (app.reader_threads), shared by its event loops; and,
# apart from them, those of the money path's transactions, so that transactions queued on a hot
# card for their group commit never hold the threads lookups need.
READERS = ReaderThreads()
MONEY = ReaderThreads(name="money")


@dataclass(frozen=True, slots=True)
class Context:
    services: Services
    principal: Principal
    request_id: str
    # The request's ``scope["state"]``: the schema leaves the root fields it ran there (app.observe).
    request_state: dict[str, Any] = field(default_factory=dict, compare=False)
    # One read of the request's at a time, in the order its fields asked: root fields of a query
    # run concurrently, and the first ones in the document must be the first to spend the attempt
    # budget (one request never holds more than one worker thread either).
    reads: asyncio.Lock = field(default_factory=asyncio.Lock, compare=False)

    async def read(self, work: Callable[[], T]) -> T:
        """``work`` (database reads, blocking) in a worker thread, after the request's earlier reads."""
        async with self.reads:
            return await READERS.run(work)
