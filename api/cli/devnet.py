"""``comity devnet``: a local consortium of demo states, one OS process per node.

Layout of DIR (reused, never overwritten, on a second run):

    DIR/genesis.json              the consortium's genesis (its hash pins the chain)
    DIR/nodes.json                [{"state", "api_url", "p2p_url"}]
    DIR/<STATE>/node.key          node (validator) key, PKCS#8 PEM, 0600
    DIR/<STATE>/admin.key         the state's admin key
    DIR/<STATE>/investigator.key  a demo investigator, enrolled at genesis
    DIR/<STATE>/authority.key     a demo central authority, enrolled at genesis
    DIR/<STATE>/enc.key           X25519 key for sealed details
    DIR/<STATE>/integration.key   the receipt adapters' key (role integration), enrolled at genesis
    DIR/<STATE>/webhook.secret    the receipt webhook's HMAC secret, 0600 (docs/CHANNELS.md)
    DIR/<STATE>/node.toml         the node's config (``comity run --config``)
    DIR/<STATE>/data/             the node's LevelDB store
    DIR/<STATE>/node.log          the node's log while run by ``comity devnet``
    DIR/<STATE>/console.token     the state's console token (role authority), 0600

With ``--observers``, each state also gets one observer node (docs/OPERATIONS.md,
"Observer nodes"), admitted by an ``add_observer`` vote once the validators run:

    DIR/observers.json            [{"state", "name", "api_url", "p2p_url", "node_pubkey"}]
    DIR/<STATE>-obs/node.key      the observer's own node key, 0600
    DIR/<STATE>-obs/node.toml     role = "observer", reading ../<STATE>/enc.key
    DIR/<STATE>-obs/data/         its store; console.token, node.log as a validator's

The console token is for the devnet only: so that a new user needs no terminal
after ``comity devnet``, each state's console URL is printed with it in the
fragment (``http://127.0.0.1:PORT/#token=…``). A browser never sends a URL's
fragment to the server (RFC 3986 §3.5), so the secret is not in any request
line or access log; the page moves it into the tab's ``sessionStorage`` and
removes it from the address bar and the history at once (docs/CONSOLE.md).
A real node's tokens are made with ``comity token create`` and given out by hand.

Node i (0-based) serves its API on 127.0.0.1:P+i and P2P on 127.0.0.1:P+100+i; of
n states, state i's observer serves on P+n+i and P+100+n+i.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from api.cli.bootstrap import DEMO_STATES, MemberKeys, build_genesis
from ledger.acts_templates import template
from ledger.block import genesis_hash
from ledger.keys import SigningKey, load_signing_key, save_signing_key
from node.authoring import complete_record, sign_envelope
from node.config import dump_config
from node.tokens import create_token

CHAIN_ID = "comity-devnet"
P2P_OFFSET = 100
CONSOLE_TOKEN = "console.token"
#: The console token's role: it reads its state's private bodies (inbox, desk, acts) and
#: writes nothing; records are authorised by their signatures, not by tokens.
CONSOLE_ROLE = "authority"
OBSERVER_SUFFIX = "-obs"  #: DIR/<STATE>-obs: the state's observer node
ADMIT_TIMEOUT_S = 90.0  #: the validators' start and the observers' admission votes


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


PORT_BLOCK = 200  #: a block of ports: the API ports, then the P2P ports P2P_OFFSET above


def _block_free(base: int, nodes: int) -> bool:
    ports = [base + i for i in range(nodes)] + [base + P2P_OFFSET + i for i in range(nodes)]
    return all(port_free(p) for p in ports)


def find_base_port(nodes: int, start: int = 7000) -> int:
    for base in range(start, 60000, PORT_BLOCK):
        if _block_free(base, nodes):
            return base
    raise RuntimeError("no free block of ports found on 127.0.0.1")


def worker_lane() -> tuple[int, int]:
    """This process's lane among parallel test workers: ``(index, count)``.

    pytest-xdist names its workers ``gw0``, ``gw1``, … in ``PYTEST_XDIST_WORKER`` and
    their number in ``PYTEST_XDIST_WORKER_COUNT``; child processes (``scripts/bench``
    run by a test) inherit both. Outside such a run: ``(0, 1)``."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    count_text = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")
    count = int(count_text) if count_text.isdigit() and int(count_text) > 0 else 1
    index = int(name[2:]) if name.startswith("gw") and name[2:].isdigit() else 0
    return index % count, count


def find_lane_base_port(nodes: int, region_start: int, slots: int) -> int:
    """A free block in ``region_start + k·PORT_BLOCK`` (``k < slots``), in this process's lane.

    A block is free *now*; its nodes bind it a moment later. Two test workers must never
    pick one block in that moment, so slots are dealt out by number modulo the worker
    count (worker ``i`` only looks at slots ``≡ i``), and the process id spreads two runs
    on one machine over a worker's slots. Keep regions below 32768, where Linux's
    ephemeral ports start: an outgoing connection may hold any port above it."""
    index, count = worker_lane()
    mine = max(1, slots // count)
    for step in range(mine):
        base = region_start + (index + count * ((os.getpid() + step) % mine)) * PORT_BLOCK
        if _block_free(base, nodes):
            return base
    raise RuntimeError(f"no free block of {nodes} ports in this lane's slots from {region_start}")


def prepare(
    directory: Path, nodes: int, base_port: int, consensus: dict[str, Any] | None = None
) -> list[dict[str, str]]:
    """Create (or reuse) keys, genesis and configs for ``nodes`` demo states."""
    if not 1 <= nodes <= len(DEMO_STATES):
        raise ValueError(f"--nodes must be between 1 and {len(DEMO_STATES)}")
    directory.mkdir(parents=True, exist_ok=True)
    genesis_path = directory / "genesis.json"
    if genesis_path.exists():
        genesis = json.loads(genesis_path.read_text())
        states = [(m["state"], m["name"]) for m in genesis["members"]]
        if len(states) != nodes:
            raise ValueError(
                f"{directory} already holds a {len(states)}-state devnet; "
                f"use --nodes {len(states)} or another --dir"
            )
    else:
        states = list(DEMO_STATES[:nodes])
    members = [MemberKeys.load_or_create(directory / s, s, name) for s, name in states]
    rows = [
        {
            "state": m.state,
            "api_url": f"http://127.0.0.1:{base_port + i}",
            "p2p_url": f"http://127.0.0.1:{base_port + P2P_OFFSET + i}",
        }
        for i, m in enumerate(members)
    ]
    if not genesis_path.exists():
        urls = {row["state"]: row["p2p_url"] for row in rows}
        genesis = build_genesis(CHAIN_ID, members, urls, consensus)
        genesis_path.write_text(json.dumps(genesis, indent=2) + "\n")
    else:  # a reused devnet keeps its genesis, and with it its P2P ports
        for row, member in zip(rows, genesis["members"], strict=True):
            row["p2p_url"] = member["p2p_url"]
    adapters = {e["pubkey"] for e in genesis["enrollments"] if "integration" in e.get("roles", [])}
    for i, member in enumerate(members):
        # A devnet made before the adapters' key has no such enrolment: no webhook then.
        webhook = member.integration is not None and member.integration.public_hex in adapters
        _write_config(directory, member.state, rows[i], rows, webhook=webhook)
    for member in members:
        console_token(directory, member.state)
    _write_example_act(directory, members[0].state, members[-1].state if nodes > 1 else "TH")
    (directory / "nodes.json").write_text(json.dumps(rows, indent=2) + "\n")
    return rows


def _write_config(
    directory: Path,
    state: str,
    row: dict[str, str],
    rows: list[dict[str, str]],
    *,
    webhook: bool = False,
) -> None:
    api_port = int(row["api_url"].rsplit(":", 1)[1])
    p2p_port = int(row["p2p_url"].rsplit(":", 1)[1])
    config = {
        "state": state,
        "genesis_path": "../genesis.json",
        "node_key_path": "node.key",
        "enc_key_path": "enc.key",
        "data_dir": "data",
        "open_read": True,
        "log_format": "text",
        "api": {"host": "127.0.0.1", "port": api_port},
        "p2p": {"host": "127.0.0.1", "port": p2p_port},
    }
    if webhook:  # the receipt webhook, ready for a local connector (docs/CHANNELS.md)
        secret = directory / state / "webhook.secret"
        if not secret.exists():
            fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, (secrets.token_hex(32) + "\n").encode())
            finally:
                os.close(fd)
        config["receipts"] = {
            "webhook_secret_path": "webhook.secret",
            "integration_key_path": "integration.key",
            "agency": f"{state} integration adapter",
        }
    (directory / state / "node.toml").write_text(dump_config(config))


def console_token(directory: Path, state: str, folder: str | None = None) -> str:
    """The state's console token on its node in ``folder`` (default: the validator's,
    ``DIR/<STATE>``): made once (``node/tokens.py``), kept 0600 beside its keys."""
    path = directory / (folder or state) / CONSOLE_TOKEN
    if path.exists():
        return path.read_text().strip()
    _, secret = create_token(
        directory / (folder or state) / "data", CONSOLE_ROLE, "devnet console", state=state
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (secret + "\n").encode())
    finally:
        os.close(fd)
    return secret


def console_url(directory: Path, row: dict[str, str]) -> str:
    """``http://127.0.0.1:PORT/#token=…``, or the bare console URL when there is no token."""
    path = directory / row.get("name", row["state"]) / CONSOLE_TOKEN
    base = f"{row['api_url']}/"
    return f"{base}#token={path.read_text().strip()}" if path.exists() else base


def _write_example_act(directory: Path, actor: str, territorial: str) -> None:
    """A valid preservation request template the first command of the hint submits."""
    example = directory / "example-act.json"
    if not example.exists():
        record = template("preservation_request", state=actor, territorial_states=(territorial,))
        example.write_text(json.dumps(record, indent=2) + "\n")


def prepare_observers(directory: Path, rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """One observer node per state (``DIR/<STATE>-obs``), reused on a second run."""
    base = int(rows[0]["api_url"].rsplit(":", 1)[1])
    out = []
    for i, row in enumerate(rows):
        state, name = row["state"], row["state"] + OBSERVER_SUFFIX
        folder = directory / name
        folder.mkdir(exist_ok=True)
        key_path = folder / "node.key"
        if not key_path.exists():
            save_signing_key(key_path, SigningKey.generate())
        api_port, p2p_port = base + len(rows) + i, base + P2P_OFFSET + len(rows) + i
        config = {
            "state": state,
            "role": "observer",
            "genesis_path": "../genesis.json",
            "node_key_path": "node.key",
            "enc_key_path": f"../{state}/enc.key",  # its state's own: a party node
            "data_dir": "data",
            "open_read": True,
            "log_format": "text",
            "api": {"host": "127.0.0.1", "port": api_port},
            "p2p": {"host": "127.0.0.1", "port": p2p_port},
        }
        (folder / "node.toml").write_text(dump_config(config))
        console_token(directory, state, name)
        out.append(
            {
                "state": state,
                "name": name,
                "api_url": f"http://127.0.0.1:{api_port}",
                "p2p_url": f"http://127.0.0.1:{p2p_port}",
                "node_pubkey": load_signing_key(key_path).public_hex,
            }
        )
    (directory / "observers.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


def _wait_ready(client: httpx.Client, rows: list[dict[str, str]], deadline: float) -> None:
    pending = [row["api_url"] for row in rows]
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"not ready: {', '.join(pending)}")
        try:
            if client.get(f"{pending[0]}/readyz").status_code == 200:
                pending.pop(0)
                continue
        except httpx.TransportError:
            pass
        time.sleep(0.2)


def _submit(
    client: httpx.Client, directory: Path, row: dict[str, str], body: dict[str, Any]
) -> tuple[dict[str, str], str]:
    """``body`` signed by ``row``'s state admin and submitted to its node: (row, id)."""
    state = row["state"]
    record = complete_record(
        {**body, "actor": {"state": state, "agency": "administration"}}, chain_id=CHAIN_ID
    )
    envelope = sign_envelope(load_signing_key(directory / state / "admin.key"), record)
    reply = client.post(f"{row['api_url']}/v1/records", json=envelope)
    if reply.status_code not in (200, 202):
        raise RuntimeError(f"{state} refused {body['type']}: {reply.text[:300]}")
    record_id: str = reply.json()["id"]
    return row, record_id


def _committed(client: httpx.Client, submitted: list[tuple[dict[str, str], str]]) -> list[str]:
    """The ids of ``submitted``, once each is committed on the node it went to."""
    for row, record_id in submitted:
        for _ in range(6):
            view = client.get(f"{row['api_url']}/v1/records/{record_id}", params={"wait": 10})
            if view.status_code == 200 and view.json().get("status") == "committed":
                break
        else:
            raise TimeoutError(f"record {record_id} did not commit on {row['state']}")
    return [record_id for _, record_id in submitted]


def admit_observers(
    directory: Path, rows: list[dict[str, str]], observers: list[dict[str, str]]
) -> None:
    """Admit every observer not yet admitted: each state's admin proposes its own
    (``add_observer``), then more than 2/3 of the states vote yes (docs/GOVERNANCE.md)."""
    by_state = {row["state"]: row for row in rows}
    quorum = rows[: len(rows) * 2 // 3 + 1]
    with httpx.Client(timeout=30) as client:
        _wait_ready(client, rows, time.monotonic() + ADMIT_TIMEOUT_S)
        listed = client.get(f"{rows[0]['api_url']}/v1/observers").json()["observers"]
        admitted = {o["node_pubkey"] for o in listed if o["admitted"]}
        todo = [o for o in observers if o["node_pubkey"] not in admitted]
        proposals = _committed(
            client,
            [
                _submit(
                    client,
                    directory,
                    by_state[o["state"]],
                    {
                        "type": "member_proposal",
                        "action": "add_observer",
                        "state": o["state"],
                        "node_pubkey": o["node_pubkey"],
                        "label": f"{o['state']} devnet observer",
                    },
                )
                for o in todo
            ],
        )
        votes = [
            _submit(client, directory, voter, {"type": "member_vote", "proposal": p, "vote": "yes"})
            for p in proposals
            for voter in quorum
        ]
        _committed(client, votes)


def hint(
    directory: Path, rows: list[dict[str, str]], observers: list[dict[str, str]] | None = None
) -> str:
    first = rows[0]
    comity = Path(sys.executable).parent / "comity"
    ports = " ".join(r["api_url"].rsplit(":", 1)[1] for r in rows)
    lines = [
        "Comity devnet: " + ", ".join(f"{r['state']} {r['api_url']}" for r in rows),
        "",
        "Submit a preservation request (example-act.json; make others with "
        "`comity act new TYPE`) as the first state's investigator and wait for it:",
        f"  {comity} submit --node {first['api_url']} "
        f"--key {directory / first['state'] / 'investigator.key'} "
        f"{directory / 'example-act.json'} --wait 20",
        "Then see it committed on every node (replace ID):",
        f"  for p in {ports}; do curl -s http://127.0.0.1:$p/v1/records/ID"
        " | head -c 200; echo; done",
        "",
        f"In a browser: {first['api_url']}/ is the console (its Verify page checks a "
        f"bundle offline; docs/CONSOLE.md), {first['api_url']}/docs the API.",
        "",
        "Each state's console, signed in (open its URL; the token stays in the tab):",
        *(f"  {r['state']}: {console_url(directory, r)}" for r in rows),
        f"Sign acts there with {directory}/<STATE>/investigator.key or authority.key "
        "(New act; Inbox, Answer).",
        "On the Verify page, pin a downloaded bundle (Case view) to "
        f"{directory / 'genesis.json'}, genesis hash "
        f"{genesis_hash(json.loads((directory / 'genesis.json').read_text()))}.",
        "",
        "Ctrl-C stops all nodes.",
    ]
    if observers:
        lines[-1:-1] = [
            "Observers (one per state, admitted by a vote once the validators run; "
            "they follow, serve reads and never vote):",
            *(f"  {o['state']}: {console_url(directory, o)}" for o in observers),
            "",
        ]
    return "\n".join(lines)


def _start(folder: Path) -> subprocess.Popen[bytes]:
    with (folder / "node.log").open("ab") as log:  # the child keeps its own fd
        return subprocess.Popen(
            [sys.executable, "-m", "api.cli", "run", "--config", str(folder / "node.toml")],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def run_nodes(
    directory: Path, rows: list[dict[str, str]], observers: list[dict[str, str]] | None = None
) -> int:
    """Start every node as its own process, the observers once admitted; stop them
    all on Ctrl-C or SIGTERM."""
    procs = [_start(directory / row["state"]) for row in rows]
    names = [row["state"] for row in rows]
    if observers:
        signal.signal(signal.SIGTERM, _interrupt)  # stop the nodes, not only this process
        try:
            admit_observers(directory, rows, observers)
        except (OSError, RuntimeError, httpx.HTTPError, KeyboardInterrupt) as exc:
            print(f"observers not admitted: {exc!r}; see DIR/<STATE>/node.log", file=sys.stderr)
            _terminate(procs)
            return 1
        procs += [_start(directory / o["name"]) for o in observers]
        names += [o["name"] for o in observers]
        print("observers admitted and started", file=sys.stderr)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping:
            dead = [
                (name, p.returncode)
                for name, p in zip(names, procs, strict=True)
                if p.poll() is not None
            ]
            if dead:
                print(f"node(s) exited: {dead}; see DIR/<STATE>/node.log", file=sys.stderr)
                return 1
            time.sleep(0.3)
    finally:
        _terminate(procs)
    return 0


def _terminate(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
