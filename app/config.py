"""Settings: one frozen object, read once from ``GIFTCARDS_*`` variables and passed down.

Nothing reads the environment at import time: the CLI and the HTTP factory call :func:`load_settings`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_core import ErrorDetails

from app.currencies import CURRENCY_EXPONENTS
from app.errors import ConfigurationError
from app.keyrings import KEYRINGS, key_material
from app.origins import browser_origin
from app.otlp import traces_endpoint
from app.secret_strength import guessable_secrets
from app.state_file import GENERATED_SECRETS, STATE_FILE, development_key_material, with_development_secrets

PREFIX = "GIFTCARDS_"
# The levels GIFTCARDS_LOG_LEVEL names, by the numbers the logging module gives them.
LOG_LEVEL_NUMBERS = {"10": "debug", "20": "info", "30": "warning", "40": "error"}


class Settings(BaseModel):
    """Everything the server needs to know, validated once."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    env: Literal["development", "production"] = "development"
    database_url: str = "sqlite:///giftcards.db"
    # PostgreSQL: the connections each worker keeps open, and the most it opens (app.db).
    db_pool_size: int = Field(default=24, ge=1, le=500)
    state_dir: Path = Path(".giftcards")
    permissions_file: Path = Path("permissions.yaml")

    jwt_secret: SecretStr | None = None
    jwt_algorithms: tuple[str, ...] = ("HS256",)
    jwt_public_key_file: Path | None = None
    jwt_jwks_url: str | None = None
    jwt_issuer: str = Field(default="giftcards", min_length=1)
    jwt_audience: str = Field(default="giftcards-api", min_length=1)
    jwt_leeway_seconds: int = Field(default=10, ge=0, le=300)
    token_max_ttl_seconds: int = Field(default=30 * 24 * 3600, gt=0)

    # Code lookup (keyed hash), code encryption (AEAD) and PIN keys: base64 of 32 random bytes. A
    # keyring is "id:key[,id:key…]", its first key current (new rows; `keys rotate` moves old ones to
    # it). code_lookup_key is a lookup keyring of one, with the id LEGACY_LOOKUP_KEY_ID.
    code_lookup_key: SecretStr | None = None
    code_lookup_keys: SecretStr | None = None
    code_encryption_keys: SecretStr | None = None
    pin_keys: SecretStr | None = None
    # Only for PINs stored as argon2 hashes before keyed PINs (a right PIN replaces them).
    pin_pepper: SecretStr | None = None
    # Set by load_settings, not a variable: whether a variable gives any of the KEYRINGS (always in
    # production). Those are the operator's to rotate; `keys rotate` only adds to the state file.
    keyrings_from_environment: bool = False
    # Set by load_settings from the standard OTEL_* variables (app.otlp), not a GIFTCARDS_ one:
    # where traces are sent over OTLP/HTTP. None: no tracing at all.
    otlp_traces_endpoint: str | None = None

    default_currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    graphiql: bool | None = None
    introspection: bool | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # One JSON object a line, or text for people; unset: json in production, text in development.
    log_format: Literal["json", "text"] | None = None
    max_body_bytes: int = Field(default=64 * 1024, gt=0)
    # A request's header fields, names and values, counted by `giftcards serve` as they arrive.
    max_header_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    # Peers whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses, networks or "*"):
    # the client address, which per-address attempt budgets count, comes from them.
    forwarded_allow_ips: tuple[str, ...] = ("127.0.0.1", "::1")
    idempotency_retention_hours: int = Field(default=48, ge=24)
    hold_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    # Group commit (app.domain.batching): a card's transactions that queue while one runs share the
    # next database transaction. The wait is how long the first of a group waits for company; 0 (the
    # default): not at all, a group is what queued meanwhile.
    group_commit: bool = True
    # On PostgreSQL a plain debit (a USE by code, with or without a PIN, no idempotency key) is tried
    # first as one statement, its own transaction (app.domain.plain_debits); false: every request
    # takes the full path.
    one_statement_debits: bool = True
    # `giftcards serve`: each worker on a CPU of its own (app.cpu_pinning), when there are as many.
    pin_workers: bool = True
    batch_wait_ms: float = Field(default=0, ge=0, le=50)
    # How long a giftcardTokenize token can be spent (DESIGN §12): minutes, not days.
    payment_token_ttl_seconds: int = Field(default=600, ge=30, le=24 * 3600)
    max_reservation_batch: int = Field(default=500, ge=1, le=10000)
    # Most a card may hold, in major units of its own currency: room for small-unit ones (a billion
    # VND is about $40,000); the bound keeps a balance within one amount (10**15 minor units).
    max_balance: int = Field(default=1_000_000_000, ge=1, le=10**12)
    # The shortest expiry period a program may set, in days (a legal minimum: five years by default).
    min_expiry_days: int = Field(default=1825, ge=1, le=36500)

    # Hardening against untrusted callers (see README, Security).
    redis_url: str | None = None  # shared rate-limit counters; process memory when unset
    redis_prefix: str = Field(default="giftcards", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    # Processes serving on this host (`giftcards serve --workers` sets it): while Redis is
    # unreachable each counts alone with every budget divided by this.
    workers: int = Field(default=1, ge=1, le=256)
    # Code misses plus attempts in flight, per subject and per address, for roles without a budget.
    code_attempt_limits: str = "30/minute;10/10 seconds"
    client_secret_limits: str = "10/minute"  # wrong client secrets, per client id and address
    # Argon2 verifications at once per process (~64 MiB each); unset: the CPUs it may use.
    argon2_concurrency: int | None = Field(default=None, ge=1, le=256)
    pin_max_failures: int = Field(default=5, ge=1, le=100)
    pin_lockout_seconds: int = Field(default=15 * 60, ge=1)
    refusal_floor_ms: int = Field(default=250, ge=0, le=5000)
    max_query_depth: int = Field(default=8, ge=2, le=64)
    max_aliases: int = Field(default=15, ge=1, le=1000)
    max_query_tokens: int = Field(default=2000, ge=100, le=100_000)
    max_query_fields: int = Field(default=1000, ge=1, le=100_000)  # after fragment expansion
    issued_token_ttl_seconds: int = Field(default=15 * 60, ge=60, le=24 * 3600)
    # Browser pages on these origins may call the API (CORS); "*" is any origin, development only.
    cors_origins: tuple[str, ...] = ()
    # Bearer token that lets callers beyond loopback scrape /metrics (loopback always may).
    metrics_token: SecretStr | None = None

    @field_validator("jwt_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < 32:
            raise ValueError("must be at least 32 bytes")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_name(cls, value: object) -> object:
        """A level as logging writes it, in any case (INFO, Warning) or as its number (20)."""
        if isinstance(value, str):
            name = LOG_LEVEL_NUMBERS.get(value.strip(), value.strip().lower())
            if name not in LOG_LEVEL_NUMBERS.values():
                names, numbers = ", ".join(LOG_LEVEL_NUMBERS.values()), ", ".join(LOG_LEVEL_NUMBERS)
                raise ValueError(f"expected one of {names} (in any case) or {numbers}")
            return name
        return value

    @field_validator("default_currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        if value not in CURRENCY_EXPONENTS:
            raise ValueError(f"{value!r} is not a supported currency")
        return value

    @field_validator("jwt_algorithms", "forwarded_allow_ips", "cors_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        """A list setting given as one string (as the environment gives it): "a, b,c" → ("a", "b", "c")."""
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _addresses_or_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in [entry for entry in value if entry != "*"]:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address, a network or *") from None
        return value

    @field_validator("jwt_algorithms")
    @classmethod
    def _known_algorithms(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        allowed = {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "PS256"}
        if not value:
            raise ValueError("at least one algorithm is required")
        if unknown := [name for name in value if name not in allowed]:
            raise ValueError(f"unsupported algorithm(s) {unknown}; choose from {sorted(allowed)}")
        families = {name[:2] for name in value}
        if "HS" in families and len(families) > 1:
            raise ValueError("do not mix HMAC (HS*) with public-key algorithms")
        return value

    @field_validator("cors_origins")
    @classmethod
    def _exact_origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if "*" in value and len(value) > 1:
            raise ValueError("* (any origin) stands alone, not in a list of origins")
        return value if "*" in value else tuple(dict.fromkeys(browser_origin(origin) for origin in value))

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def graphiql_enabled(self) -> bool:
        return (not self.is_production) if self.graphiql is None else self.graphiql

    @property
    def introspection_enabled(self) -> bool:
        return (not self.is_production) if self.introspection is None else self.introspection

    @property
    def json_logs(self) -> bool:
        return self.is_production if self.log_format is None else self.log_format == "json"

    @property
    def uses_hmac_tokens(self) -> bool:
        return self.jwt_algorithms[0].startswith("HS")


def load_settings(environ: Mapping[str, str], *, create_state_file: bool = True) -> Settings:
    """Build settings from ``GIFTCARDS_*`` variables, and the traces endpoint from ``OTEL_*`` ones
    (app.otlp). Unknown names (typos) and bad values are one error that lists every one of them, each
    by its variable, never with a value (it may be secret). Without ``create_state_file``,
    development secrets missing from a state file stay unset."""
    values, problems = _read_environment(environ)
    try:
        endpoint = traces_endpoint(environ)
    except ConfigurationError as exc:
        endpoint = None
        problems.append(str(exc))
    from_environment = any(name in values for name in KEYRINGS)
    try:
        settings = Settings(
            **values,
            keyrings_from_environment=from_environment,
            otlp_traces_endpoint=endpoint,
        )
    except ValidationError as exc:
        problems += [_describe(error) for error in exc.errors()]
    if problems:
        raise ConfigurationError(problems[0] if len(problems) == 1 else _listed(problems))
    if settings.is_production:
        check_production(settings, explicit=set(values))
        return settings
    return with_development_secrets(settings, create=create_state_file)


def _read_environment(environ: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """The values of known settings by name, and a problem for each unknown ``GIFTCARDS_*`` name."""
    values: dict[str, str] = {}
    problems = []
    known = set(Settings.model_fields) - {"keyrings_from_environment", "otlp_traces_endpoint"}
    for key, value in sorted(environ.items()):
        if not key.startswith(PREFIX) or key.startswith(PREFIX + "TEST_"):
            continue
        name = key[len(PREFIX) :].lower()
        if name not in known:
            problems.append(f"unknown setting {key}; see the configuration table in README")
        elif value != "":  # an empty variable means "not set"
            values[name] = value
    return values, problems


def _describe(error: ErrorDetails) -> str:
    """One validation error as ``VARIABLE: what is expected``; pydantic's input is left out."""
    name = PREFIX + str(error["loc"][0]).upper() if error["loc"] else "settings"
    return f"{name}: {error['msg'].removeprefix('Value error, ')}"


def _listed(problems: list[str]) -> str:
    return f"{len(problems)} settings are wrong:" + "".join(f"\n  {problem}" for problem in problems)


def check_production(settings: Settings, explicit: set[str]) -> None:
    """Refuse to run production on missing, weak or development secrets; say what to set.
    ``explicit``: the settings given (production must not rely on issuer and audience defaults)."""
    problems = []
    if settings.uses_hmac_tokens:
        if settings.jwt_secret is None:
            problems.append("GIFTCARDS_JWT_SECRET must be set (at least 32 bytes)")
    elif not (settings.jwt_public_key_file or settings.jwt_jwks_url):
        problems.append("GIFTCARDS_JWT_PUBLIC_KEY_FILE or GIFTCARDS_JWT_JWKS_URL must be set")
    for name in ("code_lookup_key", "code_encryption_keys", "pin_keys"):
        lookup_ring = name == "code_lookup_key" and settings.code_lookup_keys is not None
        if getattr(settings, name) is None and not lookup_ring:
            problems.append(f"{PREFIX}{name.upper()} must be set (see README, Configuration)")
    if "*" in settings.cors_origins:
        problems.append(
            "GIFTCARDS_CORS_ORIGINS must list exact origins (https://shop.example); "
            "* (any origin) is for development only"
        )
    for name in ("jwt_issuer", "jwt_audience"):
        if name not in explicit:
            problems.append(f"{PREFIX}{name.upper()} must be set to your deployment's value")
    generated = development_key_material(settings.state_dir)
    for name in (*GENERATED_SECRETS, "code_lookup_keys", "pin_pepper"):
        value = getattr(settings, name, None)
        if value is not None and key_material(value.get_secret_value()) & generated:
            problems.append(
                f"{PREFIX}{name.upper()} is a development secret from "
                f"{settings.state_dir / STATE_FILE}; generate a new one"
            )
    problems.extend(guessable_secrets(settings))
    if problems:
        raise ConfigurationError("production refuses to start: " + "; ".join(problems))
