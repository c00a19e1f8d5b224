"""Monitoring apps this deployment runs (examples included)."""
