"""Everything a request needs, built once from settings: engine, stores, keys, policy, tokens."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from app.auth.secrets import PinHasher
from app.auth.tokens import TokenVerifier
from app.config import Settings
from app.db import UnitOfWork, create_db_engine
from app.domain.codes import CodeVault
from app.policy import Policy, load_policy
from app.store.cards import CardStore


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: Engine
    uow: UnitOfWork
    cards: CardStore
    vault: CodeVault
    pins: PinHasher
    policy: Policy
    tokens: TokenVerifier


def build_services(settings: Settings) -> Services:
    policy = load_policy(settings.permissions_file)
    engine = create_db_engine(settings)
    return Services(
        settings=settings,
        engine=engine,
        uow=UnitOfWork(engine),
        cards=CardStore(engine),
        vault=CodeVault.from_settings(settings),
        pins=PinHasher.from_settings(settings),
        policy=policy,
        tokens=TokenVerifier(settings, policy),
    )
