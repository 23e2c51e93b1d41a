"""End-of-run safety checks over the stopped nodes' LevelDB stores.

* every node holds the same block (header hash) at every height it has;
* every record a client was told is committed is on every node exactly once;
* no validator signed two different votes for one (height, round, type): the
  precommits in every node's certificates plus each node's consensus WAL
  (its own signed votes of the height it was in) are pooled and compared;
* every certificate verifies against the validators of its height and names
  the block that node holds;
* misbehaviour records on the chain name only nodes the run allowed to be
  faulty (a node whose disk was made to lie).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from consensus.state import PersistedState
from ledger.block import Validator, verify_certificate
from ledger.canonical import parse_json
from ledger.errors import ComityError
from ledger.store import Store
from node.driver import WAL_NAME
from node.genesis import load_genesis

VoteSlot = tuple[str, str, int, int]  # validator, type, height, round


@dataclass
class Verdict:
    heights: dict[str, int] = field(default_factory=dict)
    divergences: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    conflicting_votes: list[str] = field(default_factory=list)
    bad_certificates: list[str] = field(default_factory=list)
    misbehaving: set[str] = field(default_factory=set)
    committed_on_chain: int = 0

    def problems(self, allowed_faulty: set[str]) -> list[str]:
        out = [
            *self.divergences,
            *(f"lost {r}" for r in self.lost),
            *(f"duplicate {r}" for r in self.duplicates),
            *self.conflicting_votes,
            *self.bad_certificates,
        ]
        honest_accused = self.misbehaving - allowed_faulty
        if honest_accused:
            out.append(f"misbehaviour records name honest nodes {sorted(honest_accused)}")
        return out


def check_stores(
    root: Path,
    states: list[str],
    acknowledged: list[str],
    *,
    ledger_of: Callable[[str], Path] | None = None,
) -> Verdict:
    """Open each stopped node's store and run every check; never raises on a finding.

    ``root`` holds genesis.json; a node's store is ``root/STATE/data/ledger`` unless
    ``ledger_of`` says otherwise.
    """
    genesis = load_genesis(root / "genesis.json")
    ledger_of = ledger_of or (lambda state: root / state / "data" / "ledger")
    validators = genesis.validators()
    by_key = {v.pubkey: v.state for v in validators}
    verdict = Verdict()
    chains: dict[str, list[str]] = {}
    votes: dict[VoteSlot, set[str | None]] = defaultdict(set)
    for state in states:
        with Store.open_leveldb(ledger_of(state)) as store:
            verdict.heights[state] = store.height
            chains[state] = _scan_chain(
                store, state, genesis.chain_id, validators, votes, acknowledged, verdict, by_key
            )
            _scan_wal(store, votes)
    _compare_chains(chains, verdict)
    for (validator, kind, height, round_), hashes in sorted(votes.items()):
        if len(hashes) > 1:
            verdict.conflicting_votes.append(
                f"{by_key.get(validator, validator[:16])} signed {len(hashes)} different "
                f"{kind}s at height {height} round {round_}"
            )
    return verdict


def _scan_chain(
    store: Store,
    state: str,
    chain_id: str,
    validators: tuple[Validator, ...],
    votes: dict[VoteSlot, set[str | None]],
    acknowledged: list[str],
    verdict: Verdict,
    by_key: dict[str, str],
) -> list[str]:
    hashes: list[str] = []
    seen: Counter[str] = Counter()
    for height in range(1, store.height + 1):
        header = store.get_header(height)
        certificate = store.get_certificate(height)
        if header is None or certificate is None:
            verdict.divergences.append(f"{state}: block or certificate {height} missing")
            hashes.append("missing")
            continue
        hashes.append(header.hash())
        try:
            verify_certificate(certificate, chain_id, validators, header.hash(), height)
        except ComityError as exc:
            verdict.bad_certificates.append(f"{state}: certificate {height}: {exc}")
        for sig in certificate.signatures:
            votes[(sig.validator, "precommit", height, certificate.round)].add(
                certificate.block_hash
            )
        for record_id in store.get_block_record_ids(height):
            seen[record_id] += 1
            _note_misbehaviour(store, record_id, verdict)
    verdict.duplicates += [f"{state}: {r} x{n}" for r, n in seen.items() if n > 1]
    verdict.lost += [f"{state}: {r}" for r in acknowledged if seen[r] == 0]
    verdict.committed_on_chain = max(verdict.committed_on_chain, len(seen))
    return hashes


def _note_misbehaviour(store: Store, record_id: str, verdict: Verdict) -> None:
    raw = store.get_envelope_bytes(record_id)
    if raw is None or b"misbehaviour" not in raw:
        return
    record = parse_json(raw).get("record", {})
    if record.get("type") == "misbehaviour" and isinstance(record.get("offender_state"), str):
        verdict.misbehaving.add(record["offender_state"])


def _scan_wal(store: Store, votes: dict[VoteSlot, set[str | None]]) -> None:
    raw = store.get_state(WAL_NAME)
    if raw is None:
        return
    try:
        wal = PersistedState.from_json(parse_json(raw))
    except ComityError:
        return  # a WAL damaged on purpose; the node itself must refuse it
    for vote in wal.votes:
        votes[(vote.validator, vote.type, vote.height, vote.round)].add(vote.block_hash)


def _compare_chains(chains: dict[str, list[str]], verdict: Verdict) -> None:
    top = max((len(c) for c in chains.values()), default=0)
    for height in range(1, top + 1):
        found = {s: c[height - 1] for s, c in chains.items() if len(c) >= height}
        if len(set(found.values())) > 1:
            verdict.divergences.append(f"height {height}: {found}")
        elif len(found) < len(chains):
            missing = sorted(set(chains) - set(found))
            verdict.divergences.append(f"height {height}: missing on {missing}")
