"""Pydantic models for every object on the wire."""
