"""Settings from the environment: names, validation, development secrets, production refusals."""

from __future__ import annotations

import base64
import random
import secrets
import time

import pytest
from pydantic import ValidationError

from app.config import Settings, load_settings
from app.errors import ConfigurationError
from app.state_file import STATE_FILE

# Made by the commands production's refusals print (README, Configuration).
KEY = "9JIx/q1qCd1JOhf3p7865Z9NWOLxJ1hTbPHTUt1mdes="
ENCRYPTION_KEY = "558NeEorrp+0sOIXX0Ky/xg2T74/1KlhFjctTSGGpZQ="
PIN_KEY = "P5Hm2L6kmjRKbN+UQ7DlFk1ATCESHBBYwPkq+bMp/dY="
GUESSABLE_KEY = base64.b64encode(b"k" * 32).decode()  # 32 bytes, but one repeated
PRODUCTION = {
    "GIFTCARDS_ENV": "production",
    "GIFTCARDS_JWT_SECRET": "JUaKqp_Y3_wULzabmLeGwqJNAwR7yfPkHwf9L1VcozRNWsDxgFsRVVcwbozAtaGH",
    "GIFTCARDS_JWT_ISSUER": "https://giftcards.example",
    "GIFTCARDS_JWT_AUDIENCE": "giftcards-api",
    "GIFTCARDS_CODE_LOOKUP_KEY": KEY,
    "GIFTCARDS_CODE_ENCRYPTION_KEYS": f"k1:{ENCRYPTION_KEY}",
    "GIFTCARDS_PIN_KEYS": f"p1:{PIN_KEY}",
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
    assert settings.min_expiry_days == 1825
    assert settings.max_query_fields == 1000


def test_values_are_read_from_prefixed_variables(tmp_path):
    settings = load_settings(
        {
            "GIFTCARDS_STATE_DIR": str(tmp_path),
            "GIFTCARDS_DATABASE_URL": "postgresql+psycopg://u@127.0.0.1/db",
            "GIFTCARDS_JWT_ALGORITHMS": "RS256, ES256",
            "GIFTCARDS_JWT_JWKS_URL": "http://127.0.0.1:9/jwks.json",
            "GIFTCARDS_GRAPHIQL": "false",
            "GIFTCARDS_MAX_QUERY_FIELDS": "250",
            "OTHER_VARIABLE": "ignored",
        }
    )
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
        ({"GIFTCARDS_MIN_EXPIRY_DAYS": "0"}, "GIFTCARDS_MIN_EXPIRY_DAYS"),
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
    assert second.jwt_secret is not None
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
        (None, {"GIFTCARDS_JWT_SECRET": "ab" * 20}, "GIFTCARDS_JWT_SECRET is too guessable"),
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


def test_cors_origins_are_read_as_the_browser_writes_them(tmp_path):
    settings = load_settings(
        {
            "GIFTCARDS_STATE_DIR": str(tmp_path),
            "GIFTCARDS_CORS_ORIGINS": "https://Shop.Example:443, http://127.0.0.1:5173,https://shop.example",
        }
    )
    assert settings.cors_origins == ("https://shop.example", "http://127.0.0.1:5173")
    assert load_settings({"GIFTCARDS_STATE_DIR": str(tmp_path)}).cors_origins == ()


@pytest.mark.parametrize(
    "origins",
    [
        "https://shop.example/",
        "https://shop.example/checkout",
        "shop.example",
        "https://shop.example:0",
        "https://user@shop.example",
        "https://shop.example?x=1",
        "null",
        "https://*.shop.example",
        "https://shop.example,*",
    ],
)
def test_malformed_cors_origins_are_refused(tmp_path, origins):
    with pytest.raises(ConfigurationError, match=r"^GIFTCARDS_CORS_ORIGINS: .*(scheme://host\[:port\]|\*)"):
        load_settings({"GIFTCARDS_STATE_DIR": str(tmp_path), "GIFTCARDS_CORS_ORIGINS": origins})


def test_any_origin_is_for_development_only(tmp_path):
    development = load_settings({"GIFTCARDS_STATE_DIR": str(tmp_path), "GIFTCARDS_CORS_ORIGINS": "*"})
    assert development.cors_origins == ("*",)
    with pytest.raises(ConfigurationError, match=r"refuses to start: .*GIFTCARDS_CORS_ORIGINS must list"):
        load_settings({**PRODUCTION, "GIFTCARDS_STATE_DIR": str(tmp_path), "GIFTCARDS_CORS_ORIGINS": "*"})


def test_settings_are_frozen():
    settings = Settings()
    with pytest.raises(ValidationError, match="frozen"):
        settings.env = "production"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"jwt_audience": ""}, "jwt_audience"),
        ({"jwt_issuer": ""}, "jwt_issuer"),
        ({"jwt_secret": "x" * 31}, "32 bytes"),
        ({"default_currency": "XYZ"}, "supported currency"),
    ],
)
def test_invalid_settings_objects(values, message):
    with pytest.raises(ValidationError, match=message):
        Settings(**values)


def test_short_secret_is_refused_in_development_too(tmp_path):
    with pytest.raises(ConfigurationError, match=r"GIFTCARDS_JWT_SECRET: .*32 bytes"):
        load_settings({"GIFTCARDS_STATE_DIR": str(tmp_path), "GIFTCARDS_JWT_SECRET": "short"})


# --- guessable secrets in production ------------------------------------------------------------

JWT_SECRET_COMMAND = 'python3 -c "import secrets; print(secrets.token_urlsafe(48))"'
KEY_COMMAND = 'python3 -c "import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())"'


def test_production_refuses_a_guessable_jwt_secret_and_says_how_to_make_one(tmp_path):
    # given the secret of the issue: long enough, many characters, and a word said four times
    secret = "changeme-changeme-changeme-changeme"
    # when production starts with it
    with pytest.raises(ConfigurationError) as refused:
        load_settings({**PRODUCTION, "GIFTCARDS_STATE_DIR": str(tmp_path), "GIFTCARDS_JWT_SECRET": secret})
    # then it names the setting, says why, and gives the command that makes a good one
    message = str(refused.value)
    assert "GIFTCARDS_JWT_SECRET is too guessable (under 128 bits of estimated entropy)" in message
    assert f"generate one with `{JWT_SECRET_COMMAND}`" in message
    assert secret not in message and "changeme" not in message
    # and it starts on what that command makes
    generated = secrets.token_urlsafe(48)
    assert load_settings(
        {**PRODUCTION, "GIFTCARDS_STATE_DIR": str(tmp_path), "GIFTCARDS_JWT_SECRET": generated}
    ).is_production
    # while development runs on the guessable one as before
    development = load_settings({"GIFTCARDS_STATE_DIR": str(tmp_path), "GIFTCARDS_JWT_SECRET": secret})
    assert development.jwt_secret is not None and development.jwt_secret.get_secret_value() == secret


def _key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


KEY_SETTINGS = [
    ("GIFTCARDS_CODE_LOOKUP_KEY", "{}", "GIFTCARDS_CODE_LOOKUP_KEY is too guessable"),
    ("GIFTCARDS_CODE_LOOKUP_KEYS", "lk2:{}", "GIFTCARDS_CODE_LOOKUP_KEYS (key lk2) is too guessable"),
    ("GIFTCARDS_CODE_ENCRYPTION_KEYS", "k2:{}", "GIFTCARDS_CODE_ENCRYPTION_KEYS (key k2) is too guessable"),
    ("GIFTCARDS_PIN_KEYS", "p2:{}", "GIFTCARDS_PIN_KEYS (key p2) is too guessable"),
    # a staged key becomes current next: it is judged now
    ("GIFTCARDS_PIN_KEYS", f"p1:{PIN_KEY},+p2:{{}}", "GIFTCARDS_PIN_KEYS (key p2) is too guessable"),
]


@pytest.mark.parametrize(("variable", "ring", "message"), KEY_SETTINGS)
def test_production_refuses_each_guessable_key_by_name(tmp_path, variable, ring, message):
    environ = {**PRODUCTION, "GIFTCARDS_STATE_DIR": str(tmp_path)}
    if variable == "GIFTCARDS_CODE_LOOKUP_KEYS":
        del environ["GIFTCARDS_CODE_LOOKUP_KEY"]
    # given 32 bytes that are one byte repeated, or all zero
    for guessable in (GUESSABLE_KEY, base64.b64encode(bytes(32)).decode()):
        # when production starts with that key
        with pytest.raises(ConfigurationError) as refused:
            load_settings({**environ, variable: ring.format(guessable)})
        # then it names the setting (and key id), and the command that makes a good key
        assert message in str(refused.value)
        assert f"generate one with `{KEY_COMMAND}`" in str(refused.value)
        assert guessable not in str(refused.value)
        # while development runs on it
        assert load_settings({"GIFTCARDS_STATE_DIR": str(tmp_path), variable: ring.format(guessable)})
    # and production starts on a key the command makes
    assert load_settings({**environ, variable: ring.format(_key())}).is_production


PHRASE_KEY = base64.b64encode(b"giftcards-production-secret-2026").decode()  # 32 bytes of a phrase


@pytest.mark.parametrize(("variable", "ring", "message"), KEY_SETTINGS)
def test_production_judges_a_key_by_its_bytes_not_its_base64(tmp_path, variable, ring, message):
    environ = {**PRODUCTION, "GIFTCARDS_STATE_DIR": str(tmp_path)}
    if variable == "GIFTCARDS_CODE_LOOKUP_KEYS":
        del environ["GIFTCARDS_CODE_LOOKUP_KEY"]
    # given a key that is the base64 of a phrase: random-looking text, guessable bytes
    # when production starts with it
    with pytest.raises(ConfigurationError) as refused:
        load_settings({**environ, variable: ring.format(PHRASE_KEY)})
    # then it names the setting (and key id), and neither the key nor the phrase
    assert message in str(refused.value)
    assert PHRASE_KEY not in str(refused.value) and "production-secret" not in str(refused.value)
    # while random keys start
    generator = random.Random(2026)
    for _ in range(3):
        key = base64.b64encode(generator.randbytes(32)).decode()
        assert load_settings({**environ, variable: ring.format(key)}).is_production


@pytest.mark.parametrize(
    "secret",
    [
        base64.b64encode(b"giftcards-production-secret-2026").decode(),
        base64.urlsafe_b64encode(b"my jwt secret for the giftcards api").decode().rstrip("="),
    ],
    ids=["base64", "base64url unpadded"],
)
def test_production_refuses_a_jwt_secret_that_is_the_base64_of_a_phrase(tmp_path, secret):
    # given an HMAC secret whose text looks random, encoding a guessable phrase
    # when production starts with it
    with pytest.raises(ConfigurationError) as refused:
        load_settings({**PRODUCTION, "GIFTCARDS_STATE_DIR": str(tmp_path), "GIFTCARDS_JWT_SECRET": secret})
    # then it is refused as the phrase would be
    assert "GIFTCARDS_JWT_SECRET is too guessable" in str(refused.value)
    assert secret not in str(refused.value)


def test_an_old_guessable_key_may_stay_while_rows_move_away_from_it(tmp_path):
    environ = {**PRODUCTION, "GIFTCARDS_STATE_DIR": str(tmp_path)}
    # given a guessable encryption key, current: refused
    with pytest.raises(ConfigurationError, match=r"GIFTCARDS_CODE_ENCRYPTION_KEYS \(key k1\) is too"):
        load_settings({**environ, "GIFTCARDS_CODE_ENCRYPTION_KEYS": f"k1:{GUESSABLE_KEY}"})
    # when a good key is put first, the guessable one kept to read the rows it sealed
    rotating = {
        **environ,
        "GIFTCARDS_CODE_ENCRYPTION_KEYS": f"k2:{_key()},k1:{GUESSABLE_KEY}",
        "GIFTCARDS_PIN_KEYS": f"p2:{_key()},p1:{GUESSABLE_KEY}",
    }
    # then it starts, so that `giftcards keys rotate` can move them
    assert load_settings(rotating).is_production


def test_a_long_secret_is_judged_by_its_first_72_characters_quickly(tmp_path):
    # given a secret that is guessable for 72 characters, then random for 20,000
    secret = "changeme-" * 8 + secrets.token_urlsafe(15_000)
    started = time.perf_counter()
    # then it is refused, in a time that does not grow with its length
    with pytest.raises(ConfigurationError, match="GIFTCARDS_JWT_SECRET is too guessable"):
        load_settings({**PRODUCTION, "GIFTCARDS_STATE_DIR": str(tmp_path), "GIFTCARDS_JWT_SECRET": secret})
    assert time.perf_counter() - started < 5


# --- the HTTP edge ---------------------------------------------------------------------------------


def test_header_cap_and_trusted_proxies_are_settings(tmp_path):
    settings = load_settings({"GIFTCARDS_STATE_DIR": str(tmp_path)})
    assert settings.max_header_bytes == 16 * 1024
    assert settings.forwarded_allow_ips == ("127.0.0.1", "::1")
    settings = load_settings(
        {
            "GIFTCARDS_STATE_DIR": str(tmp_path),
            "GIFTCARDS_MAX_HEADER_BYTES": "8192",
            "GIFTCARDS_FORWARDED_ALLOW_IPS": "10.0.0.7, 192.168.0.0/16,::1",
        }
    )
    assert settings.max_header_bytes == 8192
    assert settings.forwarded_allow_ips == ("10.0.0.7", "192.168.0.0/16", "::1")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"GIFTCARDS_FORWARDED_ALLOW_IPS": "proxy.internal"},
            r"^GIFTCARDS_FORWARDED_ALLOW_IPS: .*'proxy.internal' is not an IP address, a network or \*",
        ),
        ({"GIFTCARDS_FORWARDED_ALLOW_IPS": "10.0.0.300"}, r"^GIFTCARDS_FORWARDED_ALLOW_IPS: .*not an IP"),
        ({"GIFTCARDS_MAX_HEADER_BYTES": "100"}, r"^GIFTCARDS_MAX_HEADER_BYTES: .*greater than or equal"),
        ({"GIFTCARDS_MAX_HEADER_BYTES": "2000000"}, r"^GIFTCARDS_MAX_HEADER_BYTES: .*less than or equal"),
    ],
)
def test_bad_edge_settings_name_the_variable(tmp_path, environ, message):
    with pytest.raises(ConfigurationError, match=message):
        load_settings({"GIFTCARDS_STATE_DIR": str(tmp_path), **environ})


# --- every bad variable at once ------------------------------------------------------------------


def test_every_bad_variable_is_listed_in_one_error(tmp_path):
    secret = "hunter2-is-not-long-enough"
    with pytest.raises(ConfigurationError) as raised:
        load_settings(
            {
                "GIFTCARDS_STATE_DIR": str(tmp_path),
                "GIFTCARDS_ENV": "staging",
                "GIFTCARDS_JWT_SECRET": secret,
                "GIFTCARDS_MAX_BALANCE": "lots",
                "GIFTCARDS_LOG_LEVEL": "loud",
                "GIFTCARDS_DATABSE_URL": "sqlite://",
            }
        )
    lines = str(raised.value).splitlines()
    assert lines[0] == "5 settings are wrong:"
    assert lines[1:] == [
        "  unknown setting GIFTCARDS_DATABSE_URL; see the configuration table in README",
        "  GIFTCARDS_ENV: Input should be 'development' or 'production'",
        "  GIFTCARDS_JWT_SECRET: must be at least 32 bytes",
        "  GIFTCARDS_LOG_LEVEL: expected one of debug, info, warning, error (in any case) or 10, 20, 30, 40",
        "  GIFTCARDS_MAX_BALANCE: Input should be a valid integer, unable to parse string as an integer",
    ]
    assert secret not in str(raised.value)


def test_one_bad_variable_is_one_line(tmp_path):
    with pytest.raises(ConfigurationError) as raised:
        load_settings({"GIFTCARDS_STATE_DIR": str(tmp_path), "GIFTCARDS_MAX_BODY_BYTES": "0"})
    assert str(raised.value) == "GIFTCARDS_MAX_BODY_BYTES: Input should be greater than 0"


def test_several_unknown_names_are_all_listed(tmp_path):
    with pytest.raises(ConfigurationError) as raised:
        load_settings({"GIFTCARDS_STATE_DIR": str(tmp_path), "GIFTCARDS_PORTT": "1", "GIFTCARDS_HOSTT": "x"})
    assert "unknown setting GIFTCARDS_HOSTT" in str(raised.value)
    assert "unknown setting GIFTCARDS_PORTT" in str(raised.value)


@pytest.mark.parametrize(
    ("given", "level"),
    [("INFO", "info"), ("info", "info"), ("Warning", "warning"), (" DEBUG ", "debug"), ("40", "error")],
)
def test_log_level_names_in_any_case_and_numbers(tmp_path, given, level):
    settings = load_settings({"GIFTCARDS_STATE_DIR": str(tmp_path), "GIFTCARDS_LOG_LEVEL": given})
    assert settings.log_level == level


@pytest.mark.parametrize("given", ["loud", "INFORMATION", "25", "trace"])
def test_bad_log_levels_list_the_allowed_names(tmp_path, given):
    with pytest.raises(ConfigurationError, match=r"^GIFTCARDS_LOG_LEVEL: expected one of debug, info,"):
        load_settings({"GIFTCARDS_STATE_DIR": str(tmp_path), "GIFTCARDS_LOG_LEVEL": given})


@pytest.mark.parametrize(
    ("value", "bound"), [("29", "greater than or equal"), ("86401", "less than or equal")]
)
def test_the_payment_token_lifetime_is_bounded(tmp_path, value, bound):
    with pytest.raises(ConfigurationError, match=rf"^GIFTCARDS_PAYMENT_TOKEN_TTL_SECONDS: .*{bound}"):
        load_settings({"GIFTCARDS_STATE_DIR": str(tmp_path), "GIFTCARDS_PAYMENT_TOKEN_TTL_SECONDS": value})


def test_the_payment_token_lifetime_defaults_to_ten_minutes(tmp_path):
    assert load_settings({"GIFTCARDS_STATE_DIR": str(tmp_path)}).payment_token_ttl_seconds == 600
    given = {"GIFTCARDS_STATE_DIR": str(tmp_path), "GIFTCARDS_PAYMENT_TOKEN_TTL_SECONDS": "30"}
    assert load_settings(given).payment_token_ttl_seconds == 30
