"""Webhooks: OpenAI's Webhook Endpoints API served per key, and signed deliveries."""
