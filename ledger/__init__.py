"""Comity ledger core: canonical bytes, keys, records, Merkle log, blocks, storage."""
