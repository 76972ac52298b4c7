"""Formats the gateway reads and writes: its own ids, batch lines' custom_ids, JSONL streams."""
