"""OpenAI and Azure OpenAI: one adapter speaking OpenAI's own API, a dialect per type."""
