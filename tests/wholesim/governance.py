"""Validator-set changes by governance during a run: a member proposal, then admin votes.

``add`` admits the spare member (its keys are in the ``World`` universe): once
the change is effective its node starts on an empty disk and block-syncs from
genesis, checking every certificate against the set of its height, then
votes. ``remove`` removes the last honest member; from then on it is no
longer held to liveness (its peers stop talking to it, by design).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.wholesim.scenario import Scenario

VOTE_RETRIES = 200


async def _committed(scenario: Scenario, record_id: str) -> bool:
    """Wait until some running honest node holds ``record_id`` committed."""
    for _ in range(VOTE_RETRIES):
        if any(
            s.node is not None and s.node.store.has_record(record_id)
            for s in scenario.world.up()
            if s.state in scenario.honest
        ):
            return True
        await asyncio.sleep(0.1)
    return False


async def _admin_record(
    scenario: Scenario, state: str, type_: str, /, **fields: object
) -> str | None:
    world = scenario.world
    envelope = world.envelope(state, type_=type_, signer=world.member(state).admin, **fields)
    for _ in range(VOTE_RETRIES):
        record_id = await scenario.submit_anywhere(envelope)
        if record_id is not None:
            return record_id if await _committed(scenario, record_id) else None
        await asyncio.sleep(0.2)
    return None


async def change_members(scenario: Scenario, action: str) -> None:
    world = scenario.world
    await asyncio.sleep(0.3)
    members = [m.state for m in world.members]
    proposer = members[0]
    if action == "add":
        spare = world.universe[len(world.members)]
        subject = spare.state
        fields: dict[str, object] = {
            "action": "add",
            "state": subject,
            "name": spare.name,
            "node_pubkey": spare.node.public_hex,
            "admin_pubkeys": [spare.admin.public_hex],
            "enc_pubkey": spare.enc_public_hex,
            "p2p_url": f"http://{subject.lower()}.p2p",
        }
    else:
        subject = sorted(scenario.honest - {proposer})[-1]
        fields = {"action": "remove", "state": subject}
    proposal = await _admin_record(scenario, proposer, "member_proposal", **fields)
    if proposal is None:
        return
    scenario.stats["governance_proposed"] += 1
    for voter in members:
        if (
            await _admin_record(scenario, voter, "member_vote", proposal=proposal, vote="yes")
            is None
        ):
            return
        if await _effective_soon(scenario, subject, action):
            break
    scenario.stats["governance_decided"] += 1
    while not await _effective_soon(scenario, subject, action):
        await asyncio.sleep(0.2)
    if action == "add":
        sim = world.nodes[subject]
        scenario.honest.add(subject)
        world.net.hosts[subject].honest = True
        scenario.checker.honest_keys.add(sim.member.node.public_hex)
        await scenario.start(sim)
        scenario.stats["governance_joined"] += 1
    else:
        scenario.removed.add(subject)
        scenario.stats["governance_removed"] += 1


async def _effective_soon(scenario: Scenario, subject: str, action: str) -> bool:
    """The change is scheduled: the set of some height ahead already reflects it."""
    for sim in scenario.world.up():
        node = sim.node
        if node is None or sim.state not in scenario.honest:
            continue
        latest = {v.state for v in node.app.state.latest_validators()}
        if (subject in latest) == (action == "add"):
            return True
    return False
