"""Everything a request needs, built once from settings: engine, stores, keys, policy, tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from sqlalchemy import Engine

from app.auth.counters import LocalCounters, SharedCounters, open_counters
from app.auth.gate import VerificationGate
from app.auth.throttle import Throttle, parse_limits
from app.auth.tokens import TokenVerifier
from app.config import Settings
from app.db import UnitOfWork, create_db_engine
from app.domain.audit import AuditTrail
from app.domain.codes import CodeVault
from app.domain.idempotency import Idempotency
from app.domain.ledger import Guards, Ledger
from app.domain.mutations import MutationRunner
from app.domain.pins import PinKeys
from app.policy import Policy
from app.policy_file import load_policy
from app.store.cards import CardStore
from app.store.idempotency import KeyStore
from app.store.listing import CardLister


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: Engine
    cards: CardStore
    lister: CardLister
    vault: CodeVault
    pins: PinKeys
    policy: Policy
    tokens: TokenVerifier
    mutations: MutationRunner
    ledger: Ledger
    counters: LocalCounters | SharedCounters  # behind both throttles
    code_throttle: Throttle  # code (and PIN) attempts by callers without ListGiftCards
    secret_throttle: Throttle  # client secrets at the token endpoint
    argon2_gate: VerificationGate  # argon2 verifications at once in this process
    audit: AuditTrail


def build_services(settings: Settings) -> Services:
    policy = load_policy(settings.permissions_file)
    engine = create_db_engine(settings)
    new_unit = partial(UnitOfWork, engine)
    vault = CodeVault.from_settings(settings)
    argon2_gate = VerificationGate(settings.argon2_concurrency)
    pins = PinKeys.from_settings(settings, argon2_gate)
    audit = AuditTrail(new_unit, policy)
    idempotency = Idempotency(vault, timedelta(hours=settings.idempotency_retention_hours), KeyStore(engine))
    mutations = MutationRunner(new_unit, idempotency, audit)
    counters = open_counters(settings.redis_url, settings.redis_prefix, settings.workers)
    code_throttle = Throttle(
        counters, "code", parse_limits(settings.code_attempt_limits, "GIFTCARDS_CODE_ATTEMPT_LIMITS")
    )
    return Services(
        settings=settings,
        engine=engine,
        cards=CardStore(engine),
        lister=CardLister(engine),
        vault=vault,
        pins=pins,
        policy=policy,
        tokens=TokenVerifier(settings, policy),
        mutations=mutations,
        ledger=Ledger(
            engine,
            mutations,
            vault,
            pins,
            policy,
            timedelta(seconds=settings.hold_ttl_seconds),
            Guards(
                throttle=code_throttle,
                pin_max_failures=settings.pin_max_failures,
                pin_lockout=timedelta(seconds=settings.pin_lockout_seconds),
                refusal_floor=timedelta(milliseconds=settings.refusal_floor_ms),
            ),
            max_balance=settings.max_balance,
        ),
        counters=counters,
        code_throttle=code_throttle,
        secret_throttle=Throttle(
            counters,
            "client-secret",
            parse_limits(settings.client_secret_limits, "GIFTCARDS_CLIENT_SECRET_LIMITS"),
        ),
        argon2_gate=argon2_gate,
        audit=audit,
    )
