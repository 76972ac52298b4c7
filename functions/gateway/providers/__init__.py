"""Provider adapters: one HTTP client, one dialect per provider type."""
