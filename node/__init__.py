"""Comity node runtime: config, genesis, chain state, mempool, peers, consensus driver, sync."""
