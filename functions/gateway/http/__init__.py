"""A request at the gateway's edge: resolver, body reading, caller identity, idempotency,
the provider it names and the upstream ids it touches."""
