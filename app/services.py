"""The composition root: everything a request needs, built once from settings.

The shared parts (engine, keys, policy, throttles, the audit trail, the mutation runner) first,
then one use-case object per area with its stores.
"""

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
from app.domain.addressing import Addressing, Guards
from app.domain.audit import AuditTrail
from app.domain.balances import BalanceRules
from app.domain.batching import Batcher
from app.domain.cards import Cards
from app.domain.certificates import Certificates
from app.domain.codes import CodeVault
from app.domain.history import History
from app.domain.idempotency import Idempotency
from app.domain.ledger import Ledger
from app.domain.lifecycle import Lifecycle
from app.domain.listing import Listing
from app.domain.lookup import Lookup
from app.domain.masking import CodeMasking
from app.domain.mutations import MutationRunner
from app.domain.payment_tokens import PaymentTokens, TokenIndex
from app.domain.pins import PinKeys
from app.domain.plain_debits import PlainDebits
from app.domain.program_input import ProgramLimits
from app.domain.programs import Programs
from app.domain.reservations import Reservations
from app.domain.stores import StoreListing
from app.events import Event, Events
from app.policy import Policy
from app.policy_file import load_policy
from app.store.audit import AuditStore
from app.store.cards import CardStore
from app.store.history import HistoryStore
from app.store.idempotency import KeyStore
from app.store.keys import KeyRows
from app.store.ledger import LedgerStore
from app.store.listing import CardLister
from app.store.payment_tokens import PaymentTokenStore
from app.store.plain_debits import PlainDebitStore
from app.store.programs import ProgramStore
from app.store.reservations import ReservationStore
from app.store.stores import StoreDirectory


@dataclass(frozen=True)
class _Shared:
    """What several use cases are built with."""

    engine: Engine
    policy: Policy
    vault: CodeVault
    pins: PinKeys
    argon2_gate: VerificationGate  # argon2 verifications at once in this process
    counters: LocalCounters | SharedCounters  # behind both throttles
    code_throttle: Throttle  # code (and PIN) attempts by callers without ListGiftCards
    audit: AuditTrail
    mutations: MutationRunner
    masking: CodeMasking
    balance_rules: BalanceRules  # the ceiling and hold time, for issuing with value and transactions
    events: Events  # budget refusals, PIN lockouts and replays, for the metrics


@dataclass(frozen=True)
class Services(_Shared):
    settings: Settings
    tokens: TokenVerifier
    secret_throttle: Throttle  # client secrets at the token endpoint
    card_store: CardStore
    key_rows: KeyRows  # key status and rotation; checked before serving
    stores: StoreDirectory
    # One use case per area.
    cards: Cards
    lifecycle: Lifecycle
    lookup: Lookup
    listing: Listing
    history: History
    reservations: Reservations
    ledger: Ledger
    payment_tokens: PaymentTokens  # the ledger's: giftcardTokenize
    programs: Programs
    store_listing: StoreListing
    certificates: Certificates


def _shared(settings: Settings) -> _Shared:
    policy = load_policy(settings.permissions_file)
    engine = create_db_engine(settings)
    new_unit = partial(UnitOfWork, engine)
    vault = CodeVault.from_settings(settings)
    argon2_gate = VerificationGate(settings.argon2_concurrency)
    counters = open_counters(settings.redis_url, settings.redis_prefix, settings.workers)
    code_limits = parse_limits(settings.code_attempt_limits, "GIFTCARDS_CODE_ATTEMPT_LIMITS")
    audit = AuditTrail(new_unit, AuditStore(engine), policy)
    retention = timedelta(hours=settings.idempotency_retention_hours)
    events = Events()
    idempotency = Idempotency(vault, retention, KeyStore(engine))
    mutations = MutationRunner(new_unit, idempotency, audit, events)
    if settings.group_commit:
        per_card = engine.dialect.name != "sqlite"  # one writer at a time takes any card's writes
        mutations.batcher = Batcher(new_unit, mutations, settings.batch_wait_ms / 1000, per_card)
    return _Shared(
        engine=engine,
        policy=policy,
        vault=vault,
        pins=PinKeys.from_settings(settings, argon2_gate),
        argon2_gate=argon2_gate,
        counters=counters,
        code_throttle=Throttle(
            counters, "code", code_limits, partial(events.note, Event.CODE_BUDGET_REFUSED)
        ),
        audit=audit,
        mutations=mutations,
        masking=CodeMasking(vault, policy),
        balance_rules=BalanceRules(settings.max_balance, timedelta(seconds=settings.hold_ttl_seconds)),
        events=events,
    )


def _ledger(settings: Settings, shared: _Shared, index: TokenIndex) -> Ledger:
    guards = Guards(
        throttle=shared.code_throttle,
        pin_max_failures=settings.pin_max_failures,
        pin_lockout=timedelta(seconds=settings.pin_lockout_seconds),
        refusal_floor=timedelta(milliseconds=settings.refusal_floor_ms),
        events=shared.events,
    )
    addressing = Addressing(LedgerStore(shared.engine), shared.vault, shared.pins, guards)
    ttl = timedelta(seconds=settings.payment_token_ttl_seconds)
    tokens = PaymentTokens(shared.mutations, addressing, shared.policy, guards, index, ttl)
    plain = None
    if settings.one_statement_debits and shared.engine.dialect.name == "postgresql":
        plain = PlainDebits(PlainDebitStore(shared.engine), shared.vault, shared.pins, shared.mutations)
    return Ledger(shared.mutations, addressing, shared.balance_rules, shared.policy, guards, tokens, plain)


def _cards(settings: Settings, shared: _Shared) -> Cards:
    return Cards(
        shared.mutations,
        shared.vault,
        shared.pins,
        shared.masking,
        settings.default_currency,
        shared.balance_rules,
        timedelta(days=settings.min_expiry_days),
    )


def build_services(settings: Settings) -> Services:
    shared = _shared(settings)
    engine, vault, masking, mutations = shared.engine, shared.vault, shared.masking, shared.mutations
    secret_limits = parse_limits(settings.client_secret_limits, "GIFTCARDS_CLIENT_SECRET_LIMITS")
    token_index = TokenIndex(vault, PaymentTokenStore(engine))
    ledger = _ledger(settings, shared, token_index)
    return Services(
        **vars(shared),
        settings=settings,
        tokens=TokenVerifier(settings, shared.policy),
        secret_throttle=Throttle(
            shared.counters,
            "client-secret",
            secret_limits,
            partial(shared.events.note, Event.CLIENT_SECRET_BUDGET_REFUSED),
        ),
        card_store=CardStore(engine),
        key_rows=KeyRows(engine),
        stores=StoreDirectory(engine),
        cards=_cards(settings, shared),
        lifecycle=Lifecycle(mutations, masking),
        lookup=Lookup(CardStore(engine), vault, masking, shared.policy, shared.code_throttle, token_index),
        listing=Listing(CardLister(engine), masking, shared.policy, vault),
        history=History(HistoryStore(engine), vault, shared.policy, shared.code_throttle),
        reservations=Reservations(mutations, vault, ReservationStore(engine), settings.max_reservation_batch),
        ledger=ledger,
        payment_tokens=ledger.tokens,
        programs=Programs(
            mutations, ProgramStore(engine), ProgramLimits(settings.max_balance, settings.min_expiry_days)
        ),
        store_listing=StoreListing(StoreDirectory(engine)),
        certificates=Certificates(
            CardStore(engine), ProgramStore(engine), vault, shared.policy, shared.audit
        ),
    )
