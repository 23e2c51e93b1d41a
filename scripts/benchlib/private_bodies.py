"""Where the private bodies of a ``--visibility parties`` run went, read from the
stopped nodes' stores.

A rate of private acts means something only if the acts were private and their
bodies reached their parties and no one else. Each node's store says how many
committed records are private acts, how many of those name its state as a
party, what its body notes say of them (``kept``, ``wanted``: the body has not
come yet, ``void``: it broke a rule), and how many bodies it holds of acts it
is not a party of, which must be none (docs/PRIVACY.md).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from ledger import keyspace as ks
from ledger.private import is_private
from ledger.store import Store


def node_summary(state: str, store_path: Path) -> dict[str, Any]:
    """One stopped node's private acts and bodies (its store opened read-only in use)."""
    with Store.open_leveldb(store_path) as store:
        party_of: set[bytes] = set()
        private = 0
        for key, raw in store.kv.iterate(prefix=ks.ENVELOPE):
            record = orjson.loads(raw)["record"]
            if is_private(record):
                private += 1
                if state in record["parties"]:
                    party_of.add(key[len(ks.ENVELOPE) :])
        notes = Counter(
            orjson.loads(raw).get("status") for _, raw in store.kv.iterate(prefix=ks.BODY_NOTE)
        )
        held = [key[len(ks.BODY) :] for key, _ in store.kv.iterate(prefix=ks.BODY)]
        return {
            "records": store.ledger_size,
            "private_acts": private,
            "party_of": len(party_of),
            "kept": notes["kept"],
            "wanted": notes["wanted"],
            "void": notes["void"],
            "bodies_held": len(held),
            "bodies_not_party": sum(1 for record_id in held if record_id not in party_of),
        }


def summary(root: Path, states: list[str]) -> dict[str, dict[str, Any]]:
    """``node_summary`` of each node of the devnet in ``root`` (nodes stopped)."""
    return {state: node_summary(state, root / state / "data" / "ledger") for state in states}
