"""POST /key/generate: a new virtual key, shown once."""

from gateway.http import idempotency
from gateway.http.resolver import GatewayApp
from gateway.models.keys import GeneratedKey, GenerateKeyRequest
from gateway.service import keys

app = GatewayApp("keys_generate")


@app.endpoint
def generate_key(request: GenerateKeyRequest) -> GeneratedKey:
    keys.require_master(app.caller)
    return idempotency.run_once(
        app,
        request.model_dump(mode="json"),
        GeneratedKey,
        lambda seed: keys.generate(request, seed=seed),
        # the new key itself is never stored: a replay derives it again from the seed
        conceal=lambda stored: {**stored, "key": ""},
        reveal=lambda replayed, seed: replayed.model_copy(
            update={"key": keys.seeded_key(seed, replayed.created_at)}
        ),
    )


handler = app.lambda_handler
