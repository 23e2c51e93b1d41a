"""Scripted governance blocks for tests/js/gov.test.mjs, with the Python replay's outcomes.

Each scenario is blocks of (height, [(record id, record)]) applied to
``ledger.audit.gov.GovState``; the expected outcome is whatever that replay gives:
the failure code, or the validator sets at some heights, the changes, and the
verdict of ``authorise`` on a few records, the proposals' statuses, the
parameters and the admitted observers. A scenario with its own ``genesis`` is
replayed from it. Hostile scenarios: votes for unknown or
closed proposals, double votes, a proposal while one is open, re-keying another
state, revoking a key not enrolled, records missing their fields.
"""

from __future__ import annotations

from typing import Any

from ledger.audit.gov import AuditFailure, GovState, parse_utc

KEY_A = "aa" * 32
KEY_B = "bb" * 32
KEY_BR = "cc" * 32
ADMIN_BR = "dd" * 32
KEY_OBS = "ee" * 32
TIME = "2026-06-01T00:00:00.000001Z"


def _record(type_: str, actor: str, **fields: Any) -> dict[str, Any]:
    return {"type": type_, "chain_id": "comity-audit", "actor": {"state": actor}, **fields}


def _votes(proposal: str, states: list[str], vote: str = "yes") -> list[list[Any]]:
    return [
        [f"v-{proposal}-{s}", _record("member_vote", s, proposal=proposal, vote=vote)]
        for s in states
    ]


def scenarios(genesis: dict[str, Any]) -> list[dict[str, Any]]:
    states = [m["state"] for m in genesis["members"]]
    cn_admin = genesis["members"][0]["admin_pubkeys"][0]
    add_br = _record(
        "member_proposal",
        "CN",
        action="add",
        state="BR",
        node_pubkey=KEY_BR,
        admin_pubkeys=[ADMIN_BR],
    )
    remove_vn = _record("member_proposal", "CN", action="remove", state=states[-1])
    enroll = _record("enroll_key", "FR", pubkey=KEY_A, roles=["investigator"], not_after=TIME)
    act = _record("preservation_request", "FR")
    add_obs = _record(
        "member_proposal", "CN", action="add_observer", state="CN", node_pubkey=KEY_OBS
    )
    remove_obs = _record(
        "member_proposal", "CN", action="remove_observer", state="CN", node_pubkey=KEY_OBS
    )
    v3 = _record(
        "member_proposal", "CN", action="set_param", name="catalogue_v3_from_height", value=90
    )
    add_br_obs_key = {**add_br, "node_pubkey": KEY_OBS}
    raw: dict[str, list[list[Any]]] = {
        "add BR by vote": [[3, [["p1", add_br]]], [4, _votes("p1", states[:3])]],
        "a vote after the proposal passed": [[3, [["p0", add_br]]], [4, _votes("p0", states)]],
        "enrol, expiring to the microsecond": [[2, [["e0", enroll]]]],
        "remove by vote, then the removed state cannot sign": [
            [3, [["p2", remove_vn]]],
            [5, _votes("p2", states[:3])],
        ],
        "rejected by no votes": [[3, [["p3", add_br]]], [4, _votes("p3", states[:2], "no")]],
        "a vote after expiry": [[3, [["p4", add_br]]], [3 + 1001, _votes("p4", states[:1])]],
        "a double vote": [
            [3, [["p5", add_br]]],
            [4, _votes("p5", states[:1]) + _votes("p5", states[:1])],
        ],
        "a vote for an unknown proposal": [[4, _votes("nope", states[:1])]],
        "a proposal while another is open": [[3, [["p6", add_br]]], [4, [["p7", add_br]]]],
        "re-keying another state's node": [
            [
                3,
                [
                    [
                        "p8",
                        _record(
                            "member_proposal",
                            "CN",
                            action="rotate_key",
                            state="FR",
                            node_pubkey=KEY_B,
                        ),
                    ]
                ],
            ]
        ],
        "rotate_key by its own state": [
            [
                3,
                [
                    [
                        "p9",
                        _record(
                            "member_proposal",
                            "FR",
                            action="rotate_key",
                            state="FR",
                            node_pubkey=KEY_B,
                        ),
                    ]
                ],
            ]
        ],
        "enrol, then revoke": [
            [2, [["e1", enroll]]],
            [6, [["r1", _record("revoke_key", "FR", pubkey=KEY_A)]]],
        ],
        "revoke a key of another state": [
            [2, [["e2", enroll]]],
            [3, [["r2", _record("revoke_key", "CN", pubkey=KEY_A)]]],
        ],
        "revoke without a pubkey": [[3, [["r3", _record("revoke_key", "FR")]]]],
        "a vote without a vote": [
            [3, [["p10", add_br]]],
            [4, [["v", _record("member_vote", "CN", proposal="p10")]]],
        ],
        "a set_param without a name": [
            [3, [["p11", _record("member_proposal", "CN", action="set_param", value=9)]]]
        ],
        "a set_param passed": [
            [
                3,
                [
                    [
                        "p12",
                        _record(
                            "member_proposal",
                            "CN",
                            action="set_param",
                            name="catalogue_v2_from_height",
                            value=90,
                        ),
                    ]
                ],
            ],
            [4, _votes("p12", states[:3])],
        ],
        "an observer admitted, then its key refused to a new member": [
            [3, [["o1", add_obs]]],
            [4, _votes("o1", states[:3])],
            [6, [["p13", add_br_obs_key]]],
            [7, _votes("p13", states[:3])],
        ],
        "an observer admitted, removed, and its key still used": [
            [3, [["o2", add_obs]]],
            [4, _votes("o2", states[:3])],
            [6, [["o3", remove_obs]]],
            [7, _votes("o3", states[:3])],
            [9, [["o4", add_obs]]],
            [10, _votes("o4", states[:3])],
        ],
        "removing an observer never admitted": [
            [3, [["o5", remove_obs]]],
            [4, _votes("o5", states[:3])],
        ],
        "an observer proposal without a node key": [
            [3, [["o6", _record("member_proposal", "CN", action="add_observer", state="CN")]]],
            [4, _votes("o6", states[:3])],
        ],
        "a member's admin key as an observer's": [
            [3, [["o7", {**add_obs, "node_pubkey": cn_admin}]]],
            [4, _votes("o7", states[:3])],
        ],
    }
    # The same blocks under a genesis that leaves catalogue v3 for later, and one that
    # has it from block 1 (a new chain's): set by vote in the first, refused in the second.
    set_v3 = [[3, [["p14", v3]]], [4, _votes("p14", states[:3])]]
    consensus = {k: v for k, v in genesis["consensus"].items() if k != "catalogue_v3_from_height"}
    genesis_v3_later = {**genesis, "consensus": consensus}
    genesis_v3_first = {**genesis, "consensus": {**consensus, "catalogue_v3_from_height": 1}}
    rights = [
        (8, TIME, KEY_A, act),
        (8, "2026-06-01T00:00:00.000002Z", KEY_A, act),
        (8, TIME, cn_admin, _record("member_vote", "CN")),
        (8, TIME, cn_admin, act),
        (8, TIME, ADMIN_BR, _record("member_vote", "BR")),
        (8, TIME, genesis["members"][-1]["node_pubkey"], _record("misbehaviour", states[-1])),
        (8, TIME, KEY_A, _record("private_act", "FR", **{"class": "request"})),
        (8, TIME, KEY_A, _record("private_act", "FR", **{"class": "answer"})),
    ]
    return [_expect(genesis, name, blocks, rights) for name, blocks in raw.items()] + [
        {
            **_expect(genesis_v3_later, "catalogue v3 set by vote", set_v3, rights),
            "genesis": genesis_v3_later,
        },
        {
            **_expect(genesis_v3_first, "catalogue v3 from genesis", set_v3, rights),
            "genesis": genesis_v3_first,
        },
    ]


def _expect(
    genesis: dict[str, Any], name: str, blocks: list[list[Any]], rights: list[Any]
) -> dict[str, Any]:
    gov = GovState(genesis)
    try:
        for height, records in blocks:
            gov.apply_block(height, [(rid, rec) for rid, rec in records])
    except AuditFailure as failure:
        return {"name": name, "blocks": blocks, "expect": {"outcome": failure.code}}
    verdicts = []
    for height, time, signer, record in rights:
        refused = gov.authorise(height, parse_utc(time), signer, record)
        verdicts.append([height, time, signer, record, None if refused is None else refused[0]])
    return {
        "name": name,
        "blocks": blocks,
        "expect": {
            "outcome": "ok",
            "sets": [[h, [s.state for s in gov.validators(h)]] for h in (1, 5, 6, 7, 8, 2000)],
            "changes": [[c.height, c.action, c.state] for c in gov.changes],
            "rights": verdicts,
            "statuses": sorted([p.id, gov._status(p, 2000)] for p in gov.proposals.values()),
            "params": sorted([name, value] for name, value in gov.params.items()),
            "observers": sorted([key, state] for key, state in gov.observers.items()),
        },
    }
