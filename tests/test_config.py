"""Settings from the environment: names, validation, development secrets, production refusals."""

from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from app.config import STATE_FILE, Settings, load_settings
from app.errors import ConfigurationError

KEY = base64.b64encode(b"k" * 32).decode()
PRODUCTION = {
    "GIFTCARDS_ENV": "production",
    "GIFTCARDS_JWT_SECRET": "production-secret-0123456789-abcdefghij",
    "GIFTCARDS_JWT_ISSUER": "https://giftcards.example",
    "GIFTCARDS_JWT_AUDIENCE": "giftcards-api",
    "GIFTCARDS_CODE_LOOKUP_KEY": KEY,
    "GIFTCARDS_CODE_ENCRYPTION_KEYS": f"k1:{KEY}",
    "GIFTCARDS_PIN_KEYS": f"p1:{KEY}",
}


def test_defaults_match_the_contract(tmp_path):
    settings = load_settings({"GIFTCARDS_STATE_DIR": str(tmp_path)})
    assert settings.env == "development"
    assert settings.database_url.startswith("sqlite:///")
    assert (settings.jwt_issuer, settings.jwt_audience) == ("giftcards", "giftcards-api")
    assert settings.jwt_algorithms == ("HS256",)
    assert str(settings.permissions_file) == "permissions.yaml"
    assert settings.graphiql_enabled and settings.introspection_enabled
    assert settings.max_balance == 1_000_000_000
    assert settings.max_query_fields == 1000


def test_values_are_read_from_prefixed_variables(tmp_path):
    settings = load_settings({
        "GIFTCARDS_STATE_DIR": str(tmp_path),
        "GIFTCARDS_DATABASE_URL": "postgresql+psycopg://u@127.0.0.1/db",
        "GIFTCARDS_JWT_ALGORITHMS": "RS256, ES256",
        "GIFTCARDS_JWT_JWKS_URL": "http://127.0.0.1:9/jwks.json",
        "GIFTCARDS_GRAPHIQL": "false",
        "GIFTCARDS_MAX_QUERY_FIELDS": "250",
        "OTHER_VARIABLE": "ignored",
    })
    assert settings.database_url == "postgresql+psycopg://u@127.0.0.1/db"
    assert settings.jwt_algorithms == ("RS256", "ES256")
    assert settings.graphiql_enabled is False
    assert settings.max_query_fields == 250


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"GIFTCARDS_DATABSE_URL": "x"}, "unknown setting GIFTCARDS_DATABSE_URL"),
        ({"GIFTCARDS_ENV": "staging"}, "GIFTCARDS_ENV"),
        ({"GIFTCARDS_JWT_ALGORITHMS": "none"}, "GIFTCARDS_JWT_ALGORITHMS"),
        ({"GIFTCARDS_JWT_ALGORITHMS": "HS256,RS256"}, "do not mix"),
        ({"GIFTCARDS_DEFAULT_CURRENCY": "usd"}, "GIFTCARDS_DEFAULT_CURRENCY"),
        ({"GIFTCARDS_MAX_BODY_BYTES": "-1"}, "GIFTCARDS_MAX_BODY_BYTES"),
        ({"GIFTCARDS_MAX_BALANCE": "0"}, "GIFTCARDS_MAX_BALANCE"),
        ({"GIFTCARDS_MAX_BALANCE": "1000000000001"}, "GIFTCARDS_MAX_BALANCE"),
        ({"GIFTCARDS_ARGON2_CONCURRENCY": "0"}, "GIFTCARDS_ARGON2_CONCURRENCY"),
        ({"GIFTCARDS_MAX_QUERY_FIELDS": "0"}, "GIFTCARDS_MAX_QUERY_FIELDS"),
        ({"GIFTCARDS_MAX_QUERY_FIELDS": "100001"}, "GIFTCARDS_MAX_QUERY_FIELDS"),
    ],
)
def test_bad_values_name_the_variable(tmp_path, environ, message):
    with pytest.raises(ConfigurationError, match=message):
        load_settings({"GIFTCARDS_STATE_DIR": str(tmp_path), **environ})


def test_development_generates_secrets_once_into_the_state_file(tmp_path):
    first = load_settings({"GIFTCARDS_STATE_DIR": str(tmp_path)})
    second = load_settings({"GIFTCARDS_STATE_DIR": str(tmp_path)})
    assert first.jwt_secret is not None and first.pin_pepper is not None
    assert first.jwt_secret.get_secret_value() == second.jwt_secret.get_secret_value()
    assert first.code_encryption_keys == second.code_encryption_keys
    assert (tmp_path / STATE_FILE).stat().st_mode & 0o777 == 0o600


def test_explicit_secrets_win_over_the_state_file(tmp_path):
    settings = load_settings({"GIFTCARDS_STATE_DIR": str(tmp_path), "GIFTCARDS_JWT_SECRET": "e" * 40})
    assert settings.jwt_secret is not None and settings.jwt_secret.get_secret_value() == "e" * 40


def test_production_starts_with_every_secret_set(tmp_path):
    settings = load_settings({**PRODUCTION, "GIFTCARDS_STATE_DIR": str(tmp_path)})
    assert settings.is_production
    assert not settings.graphiql_enabled and not settings.introspection_enabled
    assert not (tmp_path / STATE_FILE).exists()  # production never generates


@pytest.mark.parametrize(
    ("drop", "override", "message"),
    [
        ("GIFTCARDS_JWT_SECRET", {}, "GIFTCARDS_JWT_SECRET must be set"),
        (None, {"GIFTCARDS_JWT_SECRET": "short"}, "at least 32 bytes"),
        ("GIFTCARDS_CODE_LOOKUP_KEY", {}, "GIFTCARDS_CODE_LOOKUP_KEY must be set"),
        ("GIFTCARDS_CODE_ENCRYPTION_KEYS", {}, "GIFTCARDS_CODE_ENCRYPTION_KEYS must be set"),
        ("GIFTCARDS_PIN_KEYS", {}, "GIFTCARDS_PIN_KEYS must be set"),
        (None, {"GIFTCARDS_JWT_SECRET": ""}, "GIFTCARDS_JWT_SECRET must be set"),
        (None, {"GIFTCARDS_JWT_ALGORITHMS": "RS256"}, "GIFTCARDS_JWT_PUBLIC_KEY_FILE"),
        (None, {"GIFTCARDS_JWT_SECRET": "ab" * 20}, "GIFTCARDS_JWT_SECRET looks weak"),
        ("GIFTCARDS_JWT_ISSUER", {}, "GIFTCARDS_JWT_ISSUER must be set"),
        ("GIFTCARDS_JWT_AUDIENCE", {}, "GIFTCARDS_JWT_AUDIENCE must be set"),
        (None, {"GIFTCARDS_JWT_AUDIENCE": ""}, "GIFTCARDS_JWT_AUDIENCE must be set"),
    ],
)
def test_production_refuses_missing_or_weak_secrets(tmp_path, drop, override, message):
    environ = {**PRODUCTION, **override}
    environ.pop(drop or "", None)
    with pytest.raises(ConfigurationError, match=message):
        load_settings(environ)


def test_production_refuses_secrets_generated_for_development(tmp_path):
    # given the secrets a development run generated into its state file
    development = load_settings({"GIFTCARDS_STATE_DIR": str(tmp_path)})
    assert development.jwt_secret is not None and development.pin_pepper is not None
    assert development.pin_keys is not None
    copied = {
        "GIFTCARDS_JWT_SECRET": development.jwt_secret.get_secret_value(),
        "GIFTCARDS_PIN_PEPPER": development.pin_pepper.get_secret_value(),
        "GIFTCARDS_PIN_KEYS": development.pin_keys.get_secret_value(),
    }
    # when production is started with them copied into its environment, it names each one
    with pytest.raises(ConfigurationError) as refused:
        load_settings({**PRODUCTION, **copied, "GIFTCARDS_STATE_DIR": str(tmp_path)})
    message = str(refused.value)
    assert "GIFTCARDS_JWT_SECRET is a development secret" in message
    assert "GIFTCARDS_PIN_PEPPER is a development secret" in message
    assert "GIFTCARDS_PIN_KEYS is a development secret" in message
    assert "GIFTCARDS_CODE_LOOKUP_KEY" not in message
    assert copied["GIFTCARDS_JWT_SECRET"] not in message


def test_settings_are_frozen():
    settings = Settings()
    with pytest.raises(ValidationError, match="frozen"):
        settings.env = "production"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("values", "message"),
    [({"jwt_audience": ""}, "jwt_audience"), ({"jwt_issuer": ""}, "jwt_issuer"),
     ({"jwt_secret": "x" * 31}, "32 bytes"), ({"default_currency": "XYZ"}, "supported currency")],
)
def test_invalid_settings_objects(values, message):
    with pytest.raises(ValidationError, match=message):
        Settings(**values)


def test_short_secret_is_refused_in_development_too(tmp_path):
    with pytest.raises(ConfigurationError, match=r"GIFTCARDS_JWT_SECRET: .*32 bytes"):
        load_settings({"GIFTCARDS_STATE_DIR": str(tmp_path), "GIFTCARDS_JWT_SECRET": "short"})
