"""Settings: one frozen object, read once from the environment and passed down.

Every setting is an environment variable with the prefix ``GIFTCARDS_`` (``database_url`` is
``GIFTCARDS_DATABASE_URL``). Nothing reads the environment at import time: the CLI and the HTTP
factory call :func:`load_settings`; tests build :class:`Settings` directly.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from app.currencies import CURRENCY_EXPONENTS
from app.errors import ConfigurationError

PREFIX = "GIFTCARDS_"
STATE_FILE = "secrets.json"

# Secrets that development generates once into the state file when they are unset. Production
# never generates: a missing one is a start-up error naming the variable to set.
GENERATED_SECRETS = ("jwt_secret", "code_lookup_key", "code_encryption_keys", "pin_pepper")


class Settings(BaseModel):
    """Everything the server needs to know, validated once."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    env: Literal["development", "production"] = "development"
    database_url: str = "sqlite:///giftcards.db"
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

    # Keyed hash of normalised codes (lookup), AEAD keys for the codes themselves, PIN pepper.
    # Keys are base64 of 32 random bytes; the encryption keyring is "id:key[,id:key…]" and the
    # first entry encrypts new codes.
    code_lookup_key: SecretStr | None = None
    code_encryption_keys: SecretStr | None = None
    pin_pepper: SecretStr | None = None

    default_currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    graphiql: bool | None = None
    introspection: bool | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    max_body_bytes: int = Field(default=64 * 1024, gt=0)
    idempotency_retention_hours: int = Field(default=48, ge=24)
    hold_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    max_reservation_batch: int = Field(default=500, ge=1, le=10000)

    @field_validator("jwt_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < 32:
            raise ValueError("must be at least 32 bytes")
        return value

    @field_validator("default_currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        if value not in CURRENCY_EXPONENTS:
            raise ValueError(f"{value!r} is not a supported currency")
        return value

    @field_validator("jwt_algorithms", mode="before")
    @classmethod
    def _split_algorithms(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("jwt_algorithms")
    @classmethod
    def _known_algorithms(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        allowed = {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "PS256"}
        if not value:
            raise ValueError("at least one algorithm is required")
        unknown = [name for name in value if name not in allowed]
        if unknown:
            raise ValueError(f"unsupported algorithm(s) {unknown}; choose from {sorted(allowed)}")
        families = {name[:2] for name in value}
        if "HS" in families and len(families) > 1:
            raise ValueError("do not mix HMAC (HS*) with public-key algorithms")
        return value

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
    def uses_hmac_tokens(self) -> bool:
        return self.jwt_algorithms[0].startswith("HS")


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build settings from ``GIFTCARDS_*`` variables; unknown names are an error (typos)."""
    values: dict[str, str] = {}
    known = set(Settings.model_fields)
    for key, value in environ.items():
        if not key.startswith(PREFIX) or key.startswith(PREFIX + "TEST_"):
            continue
        name = key[len(PREFIX) :].lower()
        if name not in known:
            raise ConfigurationError(f"unknown setting {key}; see the configuration table in README")
        if value != "":  # an empty variable means "not set"
            values[name] = value
    try:
        settings = Settings(**values)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = PREFIX + str(first["loc"][0]).upper() if first["loc"] else "settings"
        raise ConfigurationError(f"{name}: {first['msg']}") from None
    if settings.is_production:
        check_production(settings)
        return settings
    return with_development_secrets(settings)


def check_production(settings: Settings) -> None:
    """Refuse to run production on missing or weak secrets; say what to set."""
    problems = []
    if settings.uses_hmac_tokens:
        if settings.jwt_secret is None:
            problems.append("GIFTCARDS_JWT_SECRET must be set (at least 32 bytes)")
    elif not (settings.jwt_public_key_file or settings.jwt_jwks_url):
        problems.append("GIFTCARDS_JWT_PUBLIC_KEY_FILE or GIFTCARDS_JWT_JWKS_URL must be set")
    for name in ("code_lookup_key", "code_encryption_keys", "pin_pepper"):
        if getattr(settings, name) is None:
            problems.append(f"{PREFIX}{name.upper()} must be set (see README, Keys)")
    if problems:
        raise ConfigurationError("production refuses to start: " + "; ".join(problems))


def new_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def with_development_secrets(settings: Settings) -> Settings:
    """Fill unset secrets from the git-ignored state file, creating it once.

    The CLI and every server worker read the same file, so a token minted by
    ``giftcards token`` is accepted by the server without configuring anything.
    """
    missing = [name for name in GENERATED_SECRETS if getattr(settings, name) is None]
    if not missing:
        return settings
    state = _read_or_create_state(settings.state_dir)
    return settings.model_copy(update={name: SecretStr(state[name]) for name in missing})


def _read_or_create_state(state_dir: Path) -> dict[str, str]:
    path = state_dir / STATE_FILE
    state_dir.mkdir(parents=True, exist_ok=True)
    fresh = {
        "jwt_secret": secrets.token_urlsafe(48),
        "code_lookup_key": new_key(),
        "code_encryption_keys": "dev1:" + new_key(),
        "pin_pepper": new_key(),
    }
    try:
        # O_EXCL: when two workers start together, exactly one writes the file.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            json.dump(fresh, handle)
    for _ in range(50):
        try:
            state = json.loads(path.read_text())
        except (json.JSONDecodeError, OSError):  # being written by the other worker
            time.sleep(0.02)
            continue
        if all(name in state for name in GENERATED_SECRETS):
            return state
        raise ConfigurationError(f"{path} is incomplete; delete it to regenerate")
    raise ConfigurationError(f"cannot read {path}")


def decode_key(name: str, value: str) -> bytes:
    try:
        key = base64.b64decode(value, validate=True)
    except binascii.Error:
        raise ConfigurationError(f"{name} is not valid base64") from None
    if len(key) != 32:
        raise ConfigurationError(f"{name} must decode to 32 bytes, got {len(key)}")
    return key
