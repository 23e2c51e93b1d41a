"""The e-mail hasher and the outbox reader (node/receipt_sources.py, docs/CHANNELS.md).

DKIM vectors come from RFC 6376: the §3.4.5 canonicalisation examples and the
Appendix A.2 body hash; a message is also signed here with a test RSA key
(relaxed/relaxed, rsa-sha256), as a DKIM signer would, and hashed back.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ledger.errors import ClientError, RecordInvalid
from node.receipt_sources import (
    canonical_body,
    check_body_hash,
    dkim_tags,
    email_receipt,
    outbox_rows,
)
from node.receipts import WebhookReceipt

#: RFC 6376 Appendix A: the example message body, and its body hash (A.2).
RFC_BODY = b"Hi.\r\n\r\nWe lost the game. Are you hungry yet?\r\n\r\nJoe.\r\n"
RFC_BH = "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8="
REF = "ab" * 32


@pytest.mark.parametrize(
    ("method", "body", "canonical"),
    [
        # RFC 6376 §3.4.5: " C \r\nD \t E\r\n\r\n\r\n"
        ("simple", b" C \r\nD \t E\r\n\r\n\r\n", b" C \r\nD \t E\r\n"),
        ("relaxed", b" C \r\nD \t E\r\n\r\n\r\n", b" C\r\nD E\r\n"),
        # §3.4.3: an empty body is one CRLF; §3.4.4: it stays empty
        ("simple", b"", b"\r\n"),
        ("relaxed", b"", b""),
        ("simple", b"\r\n\r\n", b"\r\n"),
        # §3.4.4: a CRLF is added to a body without one; bare LF ends a line too
        ("relaxed", b"last line", b"last line\r\n"),
        ("simple", b"a\nb\n", b"a\r\nb\r\n"),
    ],
)
def test_body_canonicalisation_follows_rfc_6376(method: str, body: bytes, canonical: bytes) -> None:
    assert canonical_body(body, method) == canonical


def test_the_rfc_example_body_hash_verifies() -> None:
    tags = {"d": "example.com", "s": "brisbane", "a": "rsa-sha256", "bh": RFC_BH}
    assert check_body_hash({**tags, "c": "simple/simple"}, RFC_BODY).body_hash == "verified"
    assert check_body_hash(tags, RFC_BODY + b"P.S.\r\n").body_hash == "mismatch"


def test_l_limits_the_hashed_body() -> None:
    """RFC 6376 §3.5 l=: only the first l octets of the canonical body are hashed."""
    bh = base64.b64encode(hashlib.sha256(RFC_BODY).digest()).decode()
    tags = {"d": "x", "s": "y", "a": "rsa-sha256", "bh": bh, "l": str(len(RFC_BODY))}
    assert check_body_hash(tags, RFC_BODY + b"appended by a list\r\n").body_hash == "verified"


@pytest.mark.parametrize(
    ("tags", "why"),
    [
        ({"d": "x", "s": "y", "a": "rsa-md5", "bh": RFC_BH}, "algorithm"),
        ({"d": "x", "s": "y", "a": "rsa-sha256", "bh": "!!"}, "base64"),
        ({"s": "y", "a": "rsa-sha256", "bh": RFC_BH}, "d="),
        ({"d": "x", "s": "y", "a": "rsa-sha256", "bh": RFC_BH, "c": "simple/odd"}, "canon"),
        ({"d": "x", "s": "y", "a": "rsa-sha256", "bh": RFC_BH, "l": "-1"}, "number"),
    ],
)
def test_unusable_tags_are_refused(tags: dict[str, str], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        check_body_hash(tags, RFC_BODY)


def test_tag_lists_are_parsed_and_repeats_refused() -> None:
    assert dkim_tags(" v=1; d=example.org ;bh= ab\r\n cd=;") == {
        "v": "1",
        "d": "example.org",
        "bh": "abcd=",
    }
    with pytest.raises(ValueError, match="malformed"):
        dkim_tags("d=a; d=b")


def _relaxed_header(name: str, value: str) -> bytes:
    """RFC 6376 §3.4.2, as a signer computes it (a reference for this test only)."""
    unfolded = re.sub(r"\r?\n", "", value)
    compressed = re.sub(r"[ \t]+", " ", unfolded).strip()
    return f"{name.lower()}:{compressed}\r\n".encode()


def _signed_message(body: bytes) -> tuple[bytes, rsa.RSAPublicKey, bytes, bytes]:
    """A message signed as a DKIM signer would: relaxed/relaxed, rsa-sha256."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    headers = [
        ("From", "24/7 Point of Contact <poc@police.example.fr>"),
        ("To", "Thai 24/7 <contact@cyber.example.th>"),
        ("Subject", "Preservation request CN-2026-0042"),
        ("Date", "Sun, 01 Mar 2026 10:00:00 +0100"),
        ("Message-ID", "<20260301090000.4411@police.example.fr>"),
    ]
    bh = base64.b64encode(hashlib.sha256(canonical_body(body, "relaxed")).digest()).decode()
    dkim = (
        "v=1; a=rsa-sha256; c=relaxed/relaxed; d=police.example.fr; s=poc2026;\r\n"
        f" h=from:to:subject:date:message-id; bh={bh};\r\n b="
    )
    signed = b"".join(_relaxed_header(n, v) for n, v in headers)
    signed += _relaxed_header("DKIM-Signature", dkim).rstrip(b"\r\n")
    signature = key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
    value = dkim + base64.b64encode(signature).decode()
    head = f"DKIM-Signature: {value}\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers)
    return head.encode() + b"\r\n" + body, key.public_key(), signed, signature


def test_a_dkim_signed_message_becomes_receipt_fields() -> None:
    body = b"Dear colleague,  \r\nplease preserve\tthe account data.\r\n\r\n"
    raw, public, signed, signature = _signed_message(body)
    public.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())  # a sound sample
    fields = email_receipt(raw)
    assert fields == {
        "channel": "email_24_7",
        "external_id": "20260301090000.4411@police.example.fr",
        "document_sha256": hashlib.sha256(raw).hexdigest(),
        "sent_at": "2026-03-01T09:00:00.000Z",  # the Date header, +0100, in UTC
        "sender_endpoint": "poc@police.example.fr",
        "recipient_endpoint": "contact@cyber.example.th",
        "dkim": {
            "domain": "police.example.fr",
            "selector": "poc2026",
            "body_hash": "verified",
            "signature": "not_checked",
            "verified": "body_hash_only",
        },
    }
    tampered = raw.replace(b"preserve", b"delete", 1)
    assert email_receipt(tampered)["dkim"]["body_hash"] == "mismatch"
    assert email_receipt(tampered)["dkim"]["verified"] == "failed"
    assert email_receipt(tampered)["dkim"]["reason"] == "body_hash_mismatch"
    assert email_receipt(tampered)["document_sha256"] != fields["document_sha256"]


def test_a_message_without_dkim_or_message_id() -> None:
    raw = b"From: a@b.example\nTo: c@d.example\nMessage-ID: <m1@b.example>\n\nhello\n"
    fields = email_receipt(raw)
    assert "dkim" not in fields and fields["external_id"] == "m1@b.example"
    assert fields["sent_at"] is None
    with pytest.raises(RecordInvalid) as caught:
        email_receipt(b"From: a@b.example\n\nhello\n")
    assert (caught.value.code, caught.value.field) == ("no_header", "Message-ID")
    with pytest.raises(RecordInvalid) as caught:
        email_receipt(b"Message-ID: <m@x>\nDate: yesterday\n\nhi\n")
    assert (caught.value.code, caught.value.field) == ("bad_date", "Date")
    with pytest.raises(RecordInvalid) as caught:
        email_receipt(b"Message-ID: <m@x>\nDKIM-Signature: v=1; d=x\n\nhi\n")
    assert (caught.value.code, caught.value.field) == ("bad_dkim", "DKIM-Signature")


CSV_HEADER = (
    "record_id,channel,external_id,document_sha256,sender_endpoint,recipient_endpoint,"
    "sent_at,counterpart_state,delivery_evidence\n"
)
ROW = (
    f"{REF},e_codex,msg-1@domibus,{'cd' * 32},FR-PARQUET,TH-OAG,2026-03-01T09:00:00Z,TH,"
    f"submission:{'5e' * 32}:2026-03-01T09:00:00Z;delivery:{'6f' * 32}:2026-03-01T09:00:05Z\n"
)


def test_csv_rows_are_read_with_their_evidence() -> None:
    rows = outbox_rows((CSV_HEADER + ROW).encode(), "csv")
    assert len(rows) == 1 and isinstance(rows[0], WebhookReceipt)
    assert [e.kind for e in rows[0].delivery_evidence] == ["submission", "delivery"]
    assert rows[0].counterpart_state == "TH"


@pytest.mark.parametrize(
    ("row", "field"),
    [
        (ROW.replace("e_codex", "fax"), "row[1].channel"),
        (ROW.replace("submission:", "opened:"), "row[1].delivery_evidence[0].kind"),
        (ROW.replace(";delivery:", ";delivery"), "row[1].delivery_evidence[1].kind"),
        (
            ROW.replace(f";delivery:{'6f' * 32}:2026-03-01T09:00:05Z", ";junk"),
            "row[1].delivery_evidence[1]",
        ),
        (ROW.replace("msg-1@domibus", "two words"), "row[1].external_id"),
        (ROW.rstrip("\n") + ",surplus\n", "row[1].extra_cells"),
        (ROW.replace(",TH,", ",Thailand,"), "row[1].counterpart_state"),
    ],
)
def test_a_bad_csv_row_names_its_field_and_the_others_stand(row: str, field: str) -> None:
    rows = outbox_rows((CSV_HEADER + ROW + row).encode(), "csv")
    assert isinstance(rows[0], WebhookReceipt)
    error = rows[1]
    assert isinstance(error, ClientError)
    assert (error.code, error.field) == ("invalid_receipt", field)


def test_csv_columns_and_json_shape_are_checked() -> None:
    with pytest.raises(ClientError) as caught:
        outbox_rows(b"record_id,channel\n", "csv")
    assert (caught.value.code, caught.value.field) == ("bad_columns", "file.header")
    with pytest.raises(ClientError) as caught:
        outbox_rows(b'{"record_id": 1}', "json")
    assert caught.value.code == "not_an_array"
    rows = outbox_rows(json.dumps([{"record_id": REF}]).encode(), "json")
    assert isinstance(rows[0], ClientError) and rows[0].field == "row[0].channel"
