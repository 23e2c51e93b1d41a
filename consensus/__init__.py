"""Comity's BFT engine: the Tendermint algorithm as a pure state machine (no I/O)."""
