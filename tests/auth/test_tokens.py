"""TokenVerifier and issue_token: which bearer tokens become a principal, and which are refused.

The refused cases are tables (``HMAC_REFUSED``, ``MALFORMED_HEADERS``, ``PUBLIC_KEY_REFUSED``);
``tests/test_http_auth.py`` sends the same tables through the HTTP app.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from app import cli
from app.auth.tokens import INVALID_TOKEN_MESSAGE, TokenVerifier, issue_token
from app.config import Settings, load_settings
from app.errors import ConfigurationError, InvalidTokenError
from app.policy import ANONYMOUS, Policy
from app.policy_file import load_policy
from tests.conftest import JWT_SECRET, ROOT, make_settings

ISSUER = "giftcards"
AUDIENCE = "giftcards-api"
KNOWN_KID = "signing-key-1"
STOREFRONT = frozenset({"FindGiftCardByCode", "UsePhysicalGiftCardCodes", "UseCryptoGiftCardCodes"})

PublicKeyServer = Literal["rsa-file", "es-file", "jwks"]
TokenBuilder = Callable[["Keys"], str]


# --- keys and token crafting -------------------------------------------------------------------


@dataclass(frozen=True)
class Keys:
    rsa_key: rsa.RSAPrivateKey
    other_rsa_key: rsa.RSAPrivateKey  # an attacker's key, published nowhere
    ec_key: ec.EllipticCurvePrivateKey

    @property
    def rsa_public_pem(self) -> bytes:
        return _public_pem(self.rsa_key)

    @property
    def ec_public_pem(self) -> bytes:
        return _public_pem(self.ec_key)


def make_keys() -> Keys:
    return Keys(
        rsa_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        other_rsa_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ec_key=ec.generate_private_key(ec.SECP256R1()),
    )


def _public_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def claims(**changes: Any) -> dict[str, Any]:
    """Valid claims for the default issuer and audience; a change to ``None`` drops the claim."""
    now = int(time.time())
    values: dict[str, Any] = {
        "sub": "client-1",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 600,
        "permissions": ["FindGiftCardByCode"],
    }
    values.update(changes)
    return {name: value for name, value in values.items() if value is not None}


def hs256(payload: Mapping[str, Any], secret: str = JWT_SECRET) -> str:
    return jwt.encode(dict(payload), secret, algorithm="HS256")


def rs256(payload: Mapping[str, Any], key: rsa.RSAPrivateKey, kid: str | None = KNOWN_KID) -> str:
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(dict(payload), key, algorithm="RS256", headers=headers)


def bearer(token: str) -> str:
    return f"Bearer {token}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: Mapping[str, Any]) -> str:
    return _b64url(json.dumps(value).encode())


def unsigned(payload: Mapping[str, Any]) -> str:
    """An ``alg: none`` token: header, payload and an empty signature."""
    return f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(payload)}."


def hmac_signed(payload: Mapping[str, Any], secret: bytes, kid: str | None = None) -> str:
    """HS256 by hand, for secrets PyJWT refuses to sign with (such as a PEM public key)."""
    header = {"alg": "HS256", "typ": "JWT"} | ({"kid": kid} if kid is not None else {})
    signing_input = f"{_segment(header)}.{_segment(payload)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(signature)}"


def tampered(token: str, **changes: Any) -> str:
    """The same header and signature over a payload with some claims changed."""
    header, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return f"{header}.{_segment({**decoded, **changes})}.{signature}"


def ago(seconds: int) -> int:
    return int(time.time()) - seconds


def ahead(seconds: int) -> int:
    return int(time.time()) + seconds


# Tokens an HS256 server (the default settings) must refuse: id → token.
HMAC_REFUSED: dict[str, TokenBuilder] = {
    "expired": lambda _: hs256(claims(iat=ago(3600), exp=ago(60))),
    "not-yet-valid-nbf": lambda _: hs256(claims(nbf=ahead(60))),
    "issued-in-the-future-iat": lambda _: hs256(claims(iat=ahead(60))),
    "wrong-issuer": lambda _: hs256(claims(iss="someone-else")),
    "wrong-audience": lambda _: hs256(claims(aud="another-api")),
    "missing-exp": lambda _: hs256(claims(exp=None)),
    "missing-iss": lambda _: hs256(claims(iss=None)),
    "missing-aud": lambda _: hs256(claims(aud=None)),
    "missing-sub": lambda _: hs256(claims(sub=None)),
    "tampered-payload": lambda _: tampered(hs256(claims()), permissions=["ListGiftCards"]),
    "signed-with-another-secret": lambda _: hs256(claims(), secret="another-" + "y" * 40),
    "alg-none": lambda _: unsigned(claims()),
    "rs256-token-on-hs256-server": lambda keys: rs256(claims(), keys.rsa_key),
    "permissions-not-an-array": lambda _: hs256(claims(permissions="FindGiftCardByCode")),
    "permissions-not-strings": lambda _: hs256(claims(permissions=["FindGiftCardByCode", 7])),
    "roles-not-an-array": lambda _: hs256(claims(roles="storefront")),
    "scope-not-a-string": lambda _: hs256(claims(scope=["FindGiftCardByCode"])),
    "stores-not-an-array": lambda _: hs256(claims(stores="north")),
    "stores-not-strings": lambda _: hs256(claims(stores=["north", 7])),
    "stores-malformed-id": lambda _: hs256(claims(stores=["north", "two words"])),
    "stores-empty-id": lambda _: hs256(claims(stores=[""])),
    "stores-too-many": lambda _: hs256(claims(stores=[f"s{n}" for n in range(101)])),
    "sub-not-a-string": lambda _: hs256(claims(sub=42)),
    "sub-empty": lambda _: hs256(claims(sub="")),
    "sub-too-long": lambda _: hs256(claims(sub="s" * 129)),
    "garbage": lambda _: "this-is-not-a-jwt",
    "two-segments": lambda _: ".".join(hs256(claims()).split(".")[:2]),
}

# Authorization headers that carry no bearer token at all: id → header.
MALFORMED_HEADERS: dict[str, str] = {
    "empty-bearer": "Bearer ",
    "bearer-without-token": "Bearer",
    "basic-scheme": "Basic " + base64.b64encode(b"client-1:password").decode(),
    "token-without-scheme": "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl",
}

# Tokens a server configured with public keys must refuse: id → (server, token).
PUBLIC_KEY_REFUSED: dict[str, tuple[PublicKeyServer, TokenBuilder]] = {
    # HS/RS confusion: the published public key used as an HMAC secret.
    "hs256-signed-with-the-public-key": ("rsa-file", lambda keys: hmac_signed(claims(), keys.rsa_public_pem)),
    "hs256-token-on-rs256-server": ("rsa-file", lambda _: hs256(claims())),
    "signed-by-another-key": ("rsa-file", lambda keys: rs256(claims(), keys.other_rsa_key)),
    "alg-none-on-rs256-server": ("rsa-file", lambda _: unsigned(claims())),
    "rs256-token-on-es256-server": ("es-file", lambda keys: rs256(claims(), keys.rsa_key)),
    "unknown-kid": ("jwks", lambda keys: rs256(claims(), keys.other_rsa_key, kid="not-published")),
    "known-kid-another-key": ("jwks", lambda keys: rs256(claims(), keys.other_rsa_key)),
    "no-kid": ("jwks", lambda keys: rs256(claims(), keys.rsa_key, kid=None)),
    "hs256-signed-with-the-public-key-and-a-known-kid": (
        "jwks",
        lambda keys: hmac_signed(claims(), keys.rsa_public_pem, kid=KNOWN_KID),
    ),
}


# --- public keys served and configured --------------------------------------------------------


def jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    public: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**public, "kid": kid, "use": "sig", "alg": "RS256"}


@contextmanager
def serve_jwks(document: dict[str, Any]) -> Iterator[str]:
    """Serve ``document`` (read on every request, so a test may change it) at a local URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/jwks.json":
                self.send_error(404)
                return
            body = json.dumps(document).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/jwks.json"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def public_key_settings(
    server: PublicKeyServer,
    keys: Keys,
    directory: Path,
    jwks_url: str | None,
    database_url: str = "sqlite://",
) -> Settings:
    if server == "jwks":
        assert jwks_url is not None
        return make_settings(
            database_url, directory, jwt_algorithms=("RS256",), jwt_secret=None, jwt_jwks_url=jwks_url
        )
    algorithm, pem = ("RS256", keys.rsa_public_pem) if server == "rsa-file" else ("ES256", keys.ec_public_pem)
    key_file = directory / f"{server}.pem"
    key_file.write_bytes(pem)
    return make_settings(
        database_url, directory, jwt_algorithms=(algorithm,), jwt_secret=None, jwt_public_key_file=key_file
    )


@pytest.fixture(scope="session")
def keys() -> Keys:
    return make_keys()


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy(ROOT / "permissions.yaml")


def bypass_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """The key fetcher honours proxy variables; the JWKS endpoint here is local."""
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def jwks(keys: Keys, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, dict[str, Any]]]:
    """(URL, document) of a JWKS endpoint publishing ``keys.rsa_key`` as ``KNOWN_KID``."""
    bypass_proxies(monkeypatch)
    document = {"keys": [jwk(keys.rsa_key, KNOWN_KID)]}
    with serve_jwks(document) as url:
        yield url, document


@pytest.fixture
def verifier(tmp_path: Path, policy: Policy) -> TokenVerifier:
    """The default HS256 verifier."""
    return TokenVerifier(make_settings("sqlite://", tmp_path), policy)


@pytest.fixture
def public_key_verifier(
    request: pytest.FixtureRequest, tmp_path: Path, keys: Keys, policy: Policy
) -> Callable[[PublicKeyServer], TokenVerifier]:
    def build(server: PublicKeyServer) -> TokenVerifier:
        url = request.getfixturevalue("jwks")[0] if server == "jwks" else None
        return TokenVerifier(public_key_settings(server, keys, tmp_path, url), policy)

    return build


def refused(verify: Callable[[], object]) -> str:
    """Run ``verify``, expect an InvalidTokenError with no reason chained, return its message."""
    with pytest.raises(InvalidTokenError) as caught:
        verify()
    error = caught.value
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    return str(error)


# --- refused --------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", HMAC_REFUSED.values(), ids=HMAC_REFUSED.keys())
def test_hmac_server_refuses(token: TokenBuilder, verifier: TokenVerifier, keys: Keys) -> None:
    # given a bearer token that is present but not acceptable
    authorization = bearer(token(keys))
    # when it is verified
    message = refused(lambda: verifier.principal_from_header(authorization))
    # then the refusal says only the generic message
    assert message == INVALID_TOKEN_MESSAGE


@pytest.mark.parametrize("case", PUBLIC_KEY_REFUSED.values(), ids=PUBLIC_KEY_REFUSED.keys())
def test_public_key_server_refuses(
    case: tuple[PublicKeyServer, TokenBuilder],
    public_key_verifier: Callable[[PublicKeyServer], TokenVerifier],
    keys: Keys,
) -> None:
    server, token = case
    verifier = public_key_verifier(server)
    message = refused(lambda: verifier.principal_from_header(bearer(token(keys))))
    assert message == INVALID_TOKEN_MESSAGE


@pytest.mark.parametrize("header", MALFORMED_HEADERS.values(), ids=MALFORMED_HEADERS.keys())
def test_header_without_a_bearer_token_is_refused(header: str, verifier: TokenVerifier) -> None:
    assert refused(lambda: verifier.principal_from_header(header)) == INVALID_TOKEN_MESSAGE


def test_expiry_is_checked_again_for_a_token_seen_before(tmp_path: Path, policy: Policy) -> None:
    # given a verifier without leeway and a token valid for one to two seconds, verified once
    verifier = TokenVerifier(make_settings("sqlite://", tmp_path, jwt_leeway_seconds=0), policy)
    expires = ahead(2)  # ahead(1) can fall due within a few milliseconds
    token = hs256(claims(exp=expires))
    assert verifier.verify(token).subject == "client-1"
    # when it is presented again after it expired
    time.sleep(max(0.0, expires - time.time()) + 0.1)
    # then it is refused, not served from the cache of verified tokens
    assert refused(lambda: verifier.verify(token)) == INVALID_TOKEN_MESSAGE


def test_a_key_withdrawn_from_the_jwks_is_no_longer_trusted(
    public_key_verifier: Callable[[PublicKeyServer], TokenVerifier],
    keys: Keys,
    jwks: tuple[str, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a JWKS verifier that has accepted a token signed with the published key
    verifier = public_key_verifier("jwks")
    assert verifier.verify(rs256(claims(sub="before"), keys.rsa_key)).subject == "before"
    # when the identity provider withdraws that key and the cached key set has expired
    _, document = jwks
    document["keys"] = [jwk(keys.other_rsa_key, "signing-key-2")]
    later = time.monotonic() + 3600  # the clock PyJWT's key-set cache reads
    monkeypatch.setattr(time, "monotonic", lambda: later)
    # then a new token signed with the withdrawn key is refused
    token = rs256(claims(sub="after"), keys.rsa_key)
    assert refused(lambda: verifier.verify(token)) == INVALID_TOKEN_MESSAGE


def test_a_signed_token_with_an_absurd_expiry_is_refused(verifier: TokenVerifier) -> None:
    # given a correctly signed token whose exp is an integer beyond the range of a float
    token = hs256(claims(exp=10**400))
    # then it is refused like any other unusable token, not an unexpected error
    assert refused(lambda: verifier.verify(token)) == INVALID_TOKEN_MESSAGE


# --- accepted -------------------------------------------------------------------------------------


def test_no_header_is_anonymous(verifier: TokenVerifier) -> None:
    assert verifier.principal_from_header(None) is ANONYMOUS


@pytest.mark.parametrize(
    ("changes", "granted"),
    [
        pytest.param(
            {"permissions": ["ListGiftCards", "CreateGiftCard"]},
            {"ListGiftCards", "CreateGiftCard"},
            id="permissions-array",
        ),
        pytest.param({"permissions": None, "roles": ["storefront"]}, STOREFRONT, id="role"),
        pytest.param(
            {"permissions": ["ListGiftCards"], "roles": ["storefront"]},
            STOREFRONT | {"ListGiftCards"},
            id="role-and-permissions",
        ),
        pytest.param(
            {"permissions": None, "scope": "FindGiftCardByCode UseCryptoGiftCardCodes"},
            {"FindGiftCardByCode", "UseCryptoGiftCardCodes"},
            id="oauth2-scope",
        ),
        pytest.param(
            {"permissions": ["ListGiftCards"], "scope": " CreateGiftCard\tEditGiftCard "},
            {"ListGiftCards", "CreateGiftCard", "EditGiftCard"},
            id="scope-and-permissions",
        ),
        pytest.param(
            {
                "permissions": ["DeleteEverything", "findgiftcardbycode"],
                "roles": ["root"],
                "scope": "openid profile",
            },
            set(),
            id="unknown-names-grant-nothing",
        ),
        pytest.param({"permissions": None}, set(), id="no-permissions"),
    ],
)
def test_claims_become_permissions(
    changes: dict[str, Any], granted: set[str], verifier: TokenVerifier
) -> None:
    # given a valid token carrying these claims
    token = hs256(claims(**changes))
    # when it is verified
    principal = verifier.principal_from_header(bearer(token))
    # then the principal holds exactly the known permissions they name
    assert principal.subject == "client-1"
    assert not principal.is_anonymous
    assert principal.permissions == frozenset(granted)


@pytest.mark.parametrize(
    ("stores", "acts_on"),
    [
        pytest.param(None, {"default"}, id="no-claim-is-the-default-store"),
        pytest.param(["north", "south"], {"north", "south"}, id="array-of-ids"),
        pytest.param(["north", "north"], {"north"}, id="repeated-id"),
        pytest.param([], set(), id="empty-array-is-no-store"),
        pytest.param([f"s{n}" for n in range(100)], {f"s{n}" for n in range(100)}, id="the-most-allowed"),
    ],
)
def test_the_stores_claim(stores: list[str] | None, acts_on: set[str], verifier: TokenVerifier) -> None:
    # given a valid token with this stores claim (or none), when it is verified
    principal = verifier.principal_from_header(bearer(hs256(claims(stores=stores))))
    # then the principal acts on exactly those stores
    assert principal.stores == frozenset(acts_on)
    assert principal.store_ids() == tuple(sorted(acts_on))


@pytest.mark.parametrize(
    "changes",  # callables: the times are taken when the test runs
    [
        pytest.param(lambda: {"iat": ago(3600), "exp": ago(5)}, id="expired-within-leeway"),
        pytest.param(lambda: {"nbf": ahead(5)}, id="nbf-within-leeway"),
        pytest.param(lambda: {"iat": None}, id="without-iat"),
        pytest.param(lambda: {"aud": ["another-api", AUDIENCE]}, id="audience-list"),
    ],
)
def test_tolerated_claims(changes: Callable[[], dict[str, Any]], verifier: TokenVerifier) -> None:
    assert verifier.verify(hs256(claims(**changes()))).subject == "client-1"


def test_scheme_is_case_insensitive(verifier: TokenVerifier) -> None:
    assert verifier.principal_from_header("bearer " + hs256(claims())).subject == "client-1"


@pytest.mark.parametrize(
    ("server", "sign"),
    [
        pytest.param("rsa-file", lambda keys: rs256(claims(), keys.rsa_key, kid=None), id="rs256-key-file"),
        pytest.param(
            "es-file", lambda keys: jwt.encode(claims(), keys.ec_key, algorithm="ES256"), id="es256-key-file"
        ),
        pytest.param("jwks", lambda keys: rs256(claims(), keys.rsa_key), id="rs256-jwks-known-kid"),
    ],
)
def test_public_key_server_accepts(
    server: PublicKeyServer,
    sign: Callable[[Keys], str],
    keys: Keys,
    public_key_verifier: Callable[[PublicKeyServer], TokenVerifier],
) -> None:
    principal = public_key_verifier(server).principal_from_header(bearer(sign(keys)))
    assert principal.subject == "client-1"
    assert principal.permissions == {"FindGiftCardByCode"}


def test_public_key_server_needs_a_key_source(tmp_path: Path, policy: Policy) -> None:
    settings = make_settings("sqlite://", tmp_path, jwt_algorithms=("RS256",), jwt_secret=None)
    with pytest.raises(ConfigurationError, match="PUBLIC_KEY_FILE or GIFTCARDS_JWT_JWKS_URL"):
        TokenVerifier(settings, policy)


def test_unreadable_public_key_file_is_a_configuration_error(tmp_path: Path, policy: Policy) -> None:
    settings = make_settings(
        "sqlite://",
        tmp_path,
        jwt_algorithms=("RS256",),
        jwt_secret=None,
        jwt_public_key_file=tmp_path / "missing.pem",
    )
    with pytest.raises(ConfigurationError, match="GIFTCARDS_JWT_PUBLIC_KEY_FILE"):
        TokenVerifier(settings, policy)


# --- issuing --------------------------------------------------------------------------------------


def test_issued_token_verifies(tmp_path: Path, policy: Policy, verifier: TokenVerifier) -> None:
    settings = make_settings("sqlite://", tmp_path)
    token = issue_token(
        settings, policy, "pos-7", permissions=["GiftCardTransUse"], roles=["storefront"], ttl_seconds=120
    )
    principal = verifier.verify(token)
    assert principal.subject == "pos-7"
    assert principal.permissions == STOREFRONT | {"GiftCardTransUse"}
    decoded = jwt.decode(token, JWT_SECRET, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER)
    assert decoded["exp"] - decoded["iat"] == 120


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param({"permissions": ["DeleteEverything"]}, "DeleteEverything", id="unknown-permission"),
        pytest.param({"roles": ["root"]}, "role root", id="unknown-role"),
        pytest.param({"ttl_seconds": 0}, "ttl", id="zero-ttl"),
        pytest.param({"ttl_seconds": 31 * 24 * 3600}, "ttl", id="ttl-beyond-maximum"),
    ],
)
def test_issuing_refuses(arguments: dict[str, Any], message: str, tmp_path: Path, policy: Policy) -> None:
    with pytest.raises(ConfigurationError, match=message):
        issue_token(make_settings("sqlite://", tmp_path), policy, "x", **arguments)


def test_issuing_needs_an_hmac_secret(tmp_path: Path, keys: Keys, policy: Policy) -> None:
    settings = public_key_settings("rsa-file", keys, tmp_path, None)
    with pytest.raises(ConfigurationError, match="identity"):
        issue_token(settings, policy, "x")


# --- the `giftcards token` command ------------------------------------------------------------


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., None]:
    """``environment(NAME=value, …)``: only these GIFTCARDS_* settings, state dir and policy."""

    def set_environment(**values: str) -> None:
        for name in list(os.environ):
            if name.startswith("GIFTCARDS_") and not name.startswith("GIFTCARDS_TEST_"):
                monkeypatch.delenv(name)
        values = {
            "STATE_DIR": str(tmp_path / "state"),
            "PERMISSIONS_FILE": str(ROOT / "permissions.yaml"),
            **values,
        }
        for name, value in values.items():
            monkeypatch.setenv("GIFTCARDS_" + name, value)

    return set_environment


def _key(seed: int) -> str:
    return base64.b64encode(bytes([seed]) * 32).decode()


CONFIGURED = {
    "JWT_SECRET": "cli-secret-" + "z" * 40,
    "CODE_LOOKUP_KEY": _key(11),
    "CODE_ENCRYPTION_KEYS": "c1:" + _key(12),
    "PIN_PEPPER": _key(13),
}


def test_token_command_prints_a_token_the_server_accepts(
    environment: Callable[..., None],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    policy: Policy,
) -> None:
    # given the secrets in the environment
    environment(**CONFIGURED)
    # when a storefront token is minted for 15 minutes
    status = cli.main(["token", "--sub", "x", "--role", "storefront", "--ttl", "15m"])
    # then it prints one token that a verifier with the same secret accepts
    assert status == 0
    token = capsys.readouterr().out.strip()
    settings = make_settings("sqlite://", tmp_path, jwt_secret=CONFIGURED["JWT_SECRET"])
    principal = TokenVerifier(settings, policy).verify(token)
    assert principal.subject == "x"
    assert principal.permissions == STOREFRONT
    decoded = jwt.decode(token, CONFIGURED["JWT_SECRET"], algorithms=["HS256"], audience=AUDIENCE)
    assert decoded["exp"] - decoded["iat"] == 15 * 60


def test_token_command_refuses_an_unknown_role(
    environment: Callable[..., None], capsys: pytest.CaptureFixture[str]
) -> None:
    environment(**CONFIGURED)
    status = cli.main(["token", "--sub", "x", "--role", "superuser"])
    output = capsys.readouterr()
    assert status == 2
    assert output.out == ""
    assert "unknown permission or role: role superuser" in output.err


@pytest.mark.parametrize("ttl", ["soon", "15 minutes", "1.5h", "1w"])
def test_token_command_refuses_a_bad_ttl(
    ttl: str, environment: Callable[..., None], capsys: pytest.CaptureFixture[str]
) -> None:
    environment(**CONFIGURED)
    with pytest.raises(SystemExit) as exited:
        cli.main(["token", "--sub", "x", "--ttl", ttl])
    output = capsys.readouterr()
    assert exited.value.code == 2
    assert "argument --ttl" in output.err and "is not a duration" in output.err
    assert output.out == ""


def test_development_token_verifies_through_the_state_file(
    environment: Callable[..., None],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    policy: Policy,
) -> None:
    # given development with no secrets configured
    environment()
    # when the CLI mints a token, and a server process later loads its own settings
    assert cli.main(["token", "--sub", "dev", "--role", "storefront"]) == 0
    token = capsys.readouterr().out.strip()
    first, second = load_settings(os.environ), load_settings(os.environ)
    # then both loads read the same generated secret, and the token verifies
    assert first.jwt_secret is not None and second.jwt_secret is not None
    assert first.jwt_secret.get_secret_value() == second.jwt_secret.get_secret_value()
    assert (tmp_path / "state" / "secrets.json").exists()
    assert TokenVerifier(second, policy).verify(token).permissions == STOREFRONT
