"""Provider-agnostic operations behind the endpoints: ownership, routing, id translation."""
