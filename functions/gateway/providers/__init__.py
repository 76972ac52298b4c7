"""Provider adapters: one package per provider type behind `api.ProviderApi`, and what they share."""
