"""Everything a request needs, built once from settings: engine, stores, keys, policy, tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine

from app.auth.secrets import PinHasher
from app.auth.tokens import TokenVerifier
from app.config import Settings
from app.db import UnitOfWork, create_db_engine
from app.domain.codes import CodeVault
from app.domain.idempotency import Idempotency
from app.domain.ledger import Ledger
from app.policy import Policy, load_policy
from app.store.cards import CardStore
from app.store.listing import CardLister


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: Engine
    uow: UnitOfWork
    cards: CardStore
    lister: CardLister
    vault: CodeVault
    pins: PinHasher
    policy: Policy
    tokens: TokenVerifier
    idempotency: Idempotency
    ledger: Ledger


def build_services(settings: Settings) -> Services:
    policy = load_policy(settings.permissions_file)
    engine = create_db_engine(settings)
    uow = UnitOfWork(engine)
    vault = CodeVault.from_settings(settings)
    pins = PinHasher.from_settings(settings)
    idempotency = Idempotency(uow, vault, timedelta(hours=settings.idempotency_retention_hours))
    return Services(
        settings=settings,
        engine=engine,
        uow=uow,
        cards=CardStore(engine),
        lister=CardLister(engine),
        vault=vault,
        pins=pins,
        policy=policy,
        tokens=TokenVerifier(settings, policy),
        idempotency=idempotency,
        ledger=Ledger(engine, idempotency, vault, pins, policy,
                      timedelta(seconds=settings.hold_ttl_seconds)),
    )
