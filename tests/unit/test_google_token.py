"""A Vertex deployment's service-account tokens, exchanged by google-auth over the gateway's httpx
client: the assertion's claims, reuse until near expiry, a forced refresh re-reading the key, the
token endpoint's failures as the gateway's errors, and the layer's signer (pure-Python `rsa`,
no `cryptography`) accepted by the simulator's token endpoint."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from gateway.errors import UpstreamError
from gateway.providers.vertex.google_token import ServiceAccountTokens, credentials_from_key
from google.auth import _helpers, jwt

from devserver.simulator import Simulator, SimulatorConfig
from infra import REPO_ROOT

TOKEN_URI = "https://oauth2.googleapis.com/token"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_PRIVATE = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC_PEM = _PRIVATE.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)


def _key(form: Any = serialization.PrivateFormat.PKCS8, **fields: Any) -> dict[str, Any]:
    pem = _PRIVATE.private_bytes(serialization.Encoding.PEM, form, serialization.NoEncryption()).decode()
    return {
        "type": "service_account",
        "client_email": "gw@p.iam.gserviceaccount.com",
        "private_key": pem,
        "private_key_id": "k1",
        "token_uri": TOKEN_URI,
        **fields,
    }


class TokenEndpoint:
    """Google's token endpoint as an httpx MockTransport: records each form, answers in turn."""

    def __init__(self, *answers: Callable[[httpx.Request], httpx.Response]) -> None:
        self.forms: list[dict[str, str]] = []
        self._answers = list(answers)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url == TOKEN_URI and request.method == "POST"
        self.forms.append({name: values[0] for name, values in parse_qs(request.content.decode()).items()})
        answer = self._answers.pop(0) if len(self._answers) > 1 else self._answers[0]
        return answer(request)


def issued(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200, json={"access_token": "ya29.test-token", "expires_in": 3599, "token_type": "Bearer"}
    )


class KeyReads:
    def __init__(self, key: dict[str, Any]) -> None:
        self.key = key
        self.calls: list[bool] = []

    def __call__(self, refresh: bool) -> str:
        self.calls.append(refresh)
        return json.dumps(self.key)


class Clock:
    """google-auth's clock (naive UTC, `_helpers.utcnow`), moved by the test."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 7, 6, 0, 0)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    stepped = Clock()
    monkeypatch.setattr(_helpers, "utcnow", stepped)
    return stepped


def _tokens(endpoint: TokenEndpoint, keys: KeyReads) -> ServiceAccountTokens:
    return ServiceAccountTokens("vertex", keys, httpx.Client(transport=httpx.MockTransport(endpoint)))


@pytest.mark.parametrize(
    "form", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL]
)
def test_the_assertion_carries_the_documented_claims_and_verifies(form: Any, clock: Clock) -> None:
    endpoint = TokenEndpoint(issued)
    assert _tokens(endpoint, KeyReads(_key(form))).token() == "ya29.test-token"
    (posted,) = endpoint.forms
    assert posted["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = jwt.decode(posted["assertion"], certs=PUBLIC_PEM, audience=TOKEN_URI)  # checks the signature
    assert claims["iss"] == "gw@p.iam.gserviceaccount.com" and claims["scope"] == SCOPE
    assert claims["exp"] - claims["iat"] == 3600
    assert jwt.decode_header(posted["assertion"]) == {"alg": "RS256", "typ": "JWT", "kid": "k1"}


def test_a_token_is_reused_until_near_its_expiry(clock: Clock) -> None:
    endpoint, keys = TokenEndpoint(issued), KeyReads(_key())
    tokens = _tokens(endpoint, keys)
    tokens.token()
    clock.now += timedelta(minutes=50)
    tokens.token()
    assert len(endpoint.forms) == 1 and keys.calls == [False]  # neither the key nor the endpoint again
    clock.now += timedelta(minutes=7)  # 57 min: within google-auth's 3 min 45 s of the 59 min 59 s
    tokens.token()
    assert len(endpoint.forms) == 2 and keys.calls == [False]


def test_a_forced_refresh_reads_the_key_again_and_exchanges_a_new_assertion(clock: Clock) -> None:
    endpoint, keys = TokenEndpoint(issued), KeyReads(_key())
    tokens = _tokens(endpoint, keys)
    tokens.token()
    keys.key = _key(client_email="rotated@p.iam.gserviceaccount.com")
    tokens.token(refresh=True)
    assert keys.calls == [False, True] and len(endpoint.forms) == 2
    assert (
        jwt.decode(endpoint.forms[1]["assertion"], verify=False)["iss"] == "rotated@p.iam.gserviceaccount.com"
    )


def test_an_answer_without_expires_in_is_kept_for_an_hour(clock: Clock) -> None:
    endpoint = TokenEndpoint(lambda _: httpx.Response(200, json={"access_token": "ya29.no-expiry"}))
    tokens = _tokens(endpoint, KeyReads(_key()))
    tokens.token()
    clock.now += timedelta(minutes=55)
    tokens.token()
    clock.now += timedelta(minutes=2)
    tokens.token()
    assert len(endpoint.forms) == 2


def test_a_refused_assertion_is_access_denied_naming_only_the_oauth_error(clock: Clock) -> None:
    refused = httpx.Response(
        400, json={"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
    )
    tokens = _tokens(TokenEndpoint(lambda _: refused), KeyReads(_key()))
    with pytest.raises(UpstreamError) as error:
        tokens.token()
    assert error.value.code == "provider_access_denied" and error.value.message.endswith("(invalid_grant)")


def test_an_unreachable_token_endpoint_is_an_upstream_error(clock: Clock) -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(UpstreamError) as error:
        _tokens(TokenEndpoint(unreachable), KeyReads(_key())).token()
    assert error.value.code == "upstream_error" and "could not be reached" in error.value.message


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, text="<html>proxy</html>"),
        httpx.Response(200, json={"access_token": "ya29.x", "expires_in": "soon"}),
        httpx.Response(200, json={"token_type": "Bearer"}),
    ],
)
def test_an_unreadable_token_answer_is_an_upstream_error(answer: httpx.Response, clock: Clock) -> None:
    with pytest.raises(UpstreamError) as error:
        _tokens(TokenEndpoint(lambda _: answer), KeyReads(_key())).token()
    assert error.value.status_code == 502 and "ya29" not in error.value.message


def test_a_failing_token_endpoint_is_retried_by_google_auth_then_reported(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """google-auth tries a 5xx three times with backoff; its waits are recorded, not slept."""
    from google.auth import _exponential_backoff

    waits: list[float] = []
    monkeypatch.setattr(_exponential_backoff.time, "sleep", waits.append)
    endpoint = TokenEndpoint(lambda _: httpx.Response(503, json={"error": "temporarily_unavailable"}))
    with pytest.raises(UpstreamError) as error:
        _tokens(endpoint, KeyReads(_key())).token()
    assert len(endpoint.forms) == 3 and len(waits) == 2 and error.value.status_code == 502


def test_an_unreadable_private_key_is_the_keys_fault() -> None:
    key = {"type": "service_account", "client_email": "a@b", "token_uri": "https://t"}
    for private_key in ("not a key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"):
        with pytest.raises(UpstreamError) as error:
            credentials_from_key(json.dumps({**key, "private_key": private_key}), "vertex")
        assert error.value.code == "provider_key_invalid" and private_key not in error.value.message


# The layer's signer -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig()) as simulator:
        yield simulator


_WITHOUT_CRYPTOGRAPHY = textwrap.dedent(
    """
    import json, sys
    sys.modules["cryptography"] = None  # as in the Lambda layer: any import of it fails
    sys.path.insert(0, sys.argv[1])
    import httpx
    from gateway.errors import UpstreamError
    from gateway.providers.vertex.google_token import ServiceAccountTokens

    outcomes = []
    with httpx.Client() as http:
        for key in json.load(sys.stdin):
            tokens = ServiceAccountTokens("vertex", lambda refresh, key=key: json.dumps(key), http)
            try:
                token = tokens.token()
            except UpstreamError as error:
                outcomes.append({"code": error.code})
                continue
            outcomes.append({"signer": type(tokens._credentials.signer).__module__, "token": token})
    print(json.dumps(outcomes))
    """
)


def _without_cryptography(keys: list[dict[str, Any]]) -> list[dict[str, str]]:
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_CRYPTOGRAPHY, str(REPO_ROOT / "functions")],
        input=json.dumps(keys),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    outcomes: list[dict[str, str]] = json.loads(done.stdout)
    return outcomes


def test_without_cryptography_google_auth_signs_with_pure_python_rsa_and_google_accepts_it(
    sim: Simulator,
) -> None:
    """The layer's path: google-auth 2.40.3's `_python_rsa` signer (PKCS#8 and PKCS#1 keys), whose
    assertions the simulator's token endpoint verifies; the tokens it gives open Cloud Storage.
    An unreadable key is still the key's fault on that path."""
    key = json.loads(sim.google_service_account_key())
    private = serialization.load_pem_private_key(key["private_key"].encode(), password=None)
    pkcs1 = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    broken = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"
    keys = [
        key,
        {**key, "private_key": pkcs1},
        {**key, "private_key": "not a key"},
        {**key, "private_key": broken},
    ]
    pkcs8_outcome, pkcs1_outcome, *unreadable = _without_cryptography(keys)
    assert unreadable == [{"code": "provider_key_invalid"}] * 2
    listing = f"{sim.gcs_api_base}/storage/v1/b/sim-vertex-batches/o"
    for outcome in (pkcs8_outcome, pkcs1_outcome):
        assert outcome["signer"] == "google.auth.crypt._python_rsa"
        answer = httpx.get(listing, headers={"Authorization": f"Bearer {outcome['token']}"})
        assert answer.status_code == 200, answer.text
    assert httpx.get(listing, headers={"Authorization": "Bearer ya29.other"}).status_code == 401
