"""Secrets stay secret: key files 0600, tokens stored hashed, nothing leaks in logs or answers.

A 4-node devnet of real processes (one at log level debug) is exercised on
every GET endpoint its OpenAPI lists, plus submissions, a bad token, an
operator backup and a short event stream. Then every node log and every
response (body and headers) is searched for each private key's PEM body, its
raw seed (hex and base64) and every token secret.
"""

from __future__ import annotations

import base64
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ledger.keys import load_signing_key
from node.tokens import create_token, hash_token
from tests.procnet import ProcNet

pytestmark = pytest.mark.slow

KEY_FILES = ("node.key", "admin.key", "investigator.key", "authority.key")


def _pem_body(pem: bytes) -> str:
    return "".join(line for line in pem.decode().splitlines() if not line.startswith("-----"))


def _secrets_of(folder: Path) -> dict[str, str]:
    """name -> a string that must never appear outside the key file."""
    found: dict[str, str] = {}
    for name in KEY_FILES:
        pem = (folder / name).read_bytes()
        seed = load_signing_key(folder / name).seed()
        found[f"{folder.name}/{name} PEM body"] = _pem_body(pem)
        found[f"{folder.name}/{name} seed hex"] = seed.hex()
        found[f"{folder.name}/{name} seed base64"] = base64.b64encode(seed).decode().rstrip("=")
    enc_pem = (folder / "enc.key").read_bytes()
    enc = serialization.load_pem_private_key(enc_pem, password=None)
    assert isinstance(enc, X25519PrivateKey)
    raw = enc.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    found[f"{folder.name}/enc.key PEM body"] = _pem_body(enc_pem)
    found[f"{folder.name}/enc.key raw hex"] = raw.hex()
    return found


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ProcNet, dict[str, str]]]:
    net = ProcNet(tmp_path_factory.mktemp("secrets") / "net")
    config = net.root / "CN" / "node.toml"
    config.write_text('log_level = "debug"\n' + config.read_text())
    tokens: dict[str, str] = {}
    for state in net.states:
        for role in ("operator", "auditor"):
            _, secret = create_token(net.root / state / "data", role, f"{role} of {state}")
            tokens[f"{state} {role} token"] = secret
    net.start()
    try:
        yield net, tokens
    finally:
        net.stop_all()


def _fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)(?::path)?\}", lambda m: values.get(m.group(1), "x"), path)


def _exercise(net: ProcNet, tokens: dict[str, str]) -> list[tuple[str, str, int]]:
    url = net.urls["CN"]
    operator = {"Authorization": f"Bearer {tokens['CN operator token']}"}
    replies = [httpx.post(f"{url}/v1/records", json=net.envelope("CN"))]
    record_id = replies[0].json()["id"]
    net.wait_committed("CN", record_id)
    batch = {"envelopes": [net.envelope("FR") for _ in range(3)]}
    replies.append(httpx.post(f"{net.urls['FR']}/v1/records/batch", json=batch))
    replies.append(
        httpx.get(f"{url}/v1/peers", headers={"Authorization": "Bearer cmt_0000_wrongsecret"})
    )
    replies.append(httpx.post(f"{url}/v1/admin/backup", headers=operator, timeout=30))
    spec = httpx.get(f"{url}/openapi.json").json()
    replies.append(httpx.get(f"{url}/openapi.json"))
    values = {
        "record_id": record_id,
        "height": "1",
        "case_ref": "CASE-P-1",
        "sha256": f"{1:064x}",
        "state": "CN",
    }
    for path, operations in spec["paths"].items():
        if "get" not in operations or path == "/v1/events":
            continue
        for state in ("CN", "FR"):
            headers = {"Authorization": f"Bearer {tokens[f'{state} operator token']}"}
            replies.append(
                httpx.get(net.urls[state] + _fill(path, values), headers=headers, timeout=30)
            )
    seen = [_text(i, r) for i, r in enumerate(replies)]
    with httpx.stream(
        "GET", f"{url}/v1/events", params={"last_event_id": "0"}, timeout=10
    ) as stream:
        lines = []
        for line in stream.iter_lines():
            lines.append(line)
            if len(lines) > 20:
                break
        seen.append(("SSE /v1/events", "\n".join(lines), stream.status_code))
    return seen


def _text(i: int, reply: httpx.Response) -> tuple[str, str, int]:
    headers = "\n".join(f"{k}: {v}" for k, v in reply.headers.items())
    return (
        f"response {i} {reply.request.method} {reply.request.url.path}",
        reply.content.decode("latin-1") + "\n" + headers,
        reply.status_code,
    )


def test_key_files_and_token_store_are_private(devnet: tuple[ProcNet, dict[str, str]]) -> None:
    net, tokens = devnet
    for state in net.states:
        folder = net.root / state
        for name in (*KEY_FILES, "enc.key"):
            mode = stat.S_IMODE((folder / name).stat().st_mode)
            assert mode == 0o600, f"{state}/{name} has mode {oct(mode)}"
        store = folder / "data" / "tokens.json"
        assert stat.S_IMODE(store.stat().st_mode) == 0o600
        text = store.read_text()
        for role in ("operator", "auditor"):
            secret = tokens[f"{state} {role} token"]
            assert secret not in text and _random_part(secret) not in text
            assert hash_token(secret) in text


def _random_part(secret: str) -> str:
    """The 43-character random tail of ``cmt_<16 hex id>_<token_urlsafe(32)>``.

    The tail itself may contain ``_``, so it is cut after the id, not at the last ``_``
    (a cut at the last ``_`` can leave a one-letter fragment that matches any text).
    """
    prefix, token_id, tail = secret.split("_", 2)
    assert prefix == "cmt" and len(token_id) == 16 and len(tail) == 43, secret
    return tail


def test_no_secret_in_any_log_or_response(devnet: tuple[ProcNet, dict[str, str]]) -> None:
    net, tokens = devnet
    replies = _exercise(net, tokens)
    assert sum(status == 200 for _, _, status in replies) >= 25
    assert any(status == 401 for _, _, status in replies)
    forbidden = dict(tokens)
    for state in net.states:
        forbidden |= _secrets_of(net.root / state)
    texts = {f"{state}/node.log": net.log(state) for state in net.states}
    texts |= {label: text for label, text, _ in replies}
    assert sum(len(t) for t in texts.values()) > 50_000, "too little was exercised"
    leaks = [
        f"{what} in {where}"
        for where, text in texts.items()
        for what, secret in forbidden.items()
        if secret in text
    ]
    assert leaks == []
    token_tails = {what: _random_part(s) for what, s in tokens.items()}
    leaks = [
        f"{what} (random part) in {where}"
        for where, text in texts.items()
        for what, tail in token_tails.items()
        if tail in text
    ]
    assert leaks == []
