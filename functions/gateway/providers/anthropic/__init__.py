"""Anthropic's Message Batches, and the Anthropic Messages translation Claude takes everywhere."""
