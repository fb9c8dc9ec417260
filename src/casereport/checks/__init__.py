"""Checks: CEL assertions over an aggregation's numbers, evaluated from state (never the API)."""
