"""Comity's HTTP API for investigators and auditors (FastAPI)."""
