"""DKIM header signatures checked in ``comity receipt email`` (node/dkim_verify.py).

Messages are signed here with dkimpy and fresh keys: RSA (rsa-sha256, RFC 6376
§3.3.1) and Ed25519 (ed25519-sha256, RFC 8463 §3), and verified against the
key record a DNS would give at ``<s>._domainkey.<d>`` (RFC 6376 §3.6.2.1),
passed in by the test: no network.
"""

from __future__ import annotations

import base64
import hashlib
from types import SimpleNamespace

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from ledger.errors import RecordInvalid
from node.dkim_verify import (
    DETAIL_CHARS_MAX,
    DNS_TIMEOUT_S,
    KEY_RECORD_BYTES_MAX,
    DkimOutcome,
    DkimUnavailable,
    KeySource,
    dns_source,
    file_source,
    parse_key_record,
)
from node.receipt_sources import email_receipt, read_email

DOMAIN, SELECTOR = "police.example.fr", "poc2026"
KEY_NAME = f"{SELECTOR}._domainkey.{DOMAIN}."
MESSAGE = (
    b"From: 24/7 Point of Contact <poc@police.example.fr>\r\n"
    b"To: Thai 24/7 <contact@cyber.example.th>\r\n"
    b"Subject: Preservation request CN-2026-0042\r\n"
    b"Date: Sun, 01 Mar 2026 10:00:00 +0100\r\n"
    b"Message-ID: <20260301090000.4411@police.example.fr>\r\n"
    b"\r\n"
    b"Dear colleague,\r\nplease preserve the account data.\r\n"
)
SIGNED_HEADERS = [b"from", b"to", b"subject", b"date", b"message-id"]


def _rsa(bits: int = 2048) -> tuple[bytes, bytes]:
    """(PKCS#1 PEM private key for dkim.sign, its TXT record: RFC 6376 §3.6.1 p=)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def _ed25519() -> tuple[bytes, bytes]:
    """(base64 seed for dkim.sign, its TXT record: RFC 8463 §4.2, p= the raw 32 bytes)."""
    key = ed25519.Ed25519PrivateKey.generate()
    seed = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(seed), b"v=DKIM1; k=ed25519; p=" + base64.b64encode(raw)


@pytest.fixture(scope="module")
def rsa_key() -> tuple[bytes, bytes]:
    return _rsa()


def _sign(private: bytes, algorithm: bytes, message: bytes = MESSAGE) -> bytes:
    header = dkim.sign(
        message,
        SELECTOR.encode(),
        DOMAIN.encode(),
        private,
        canonicalize=(b"relaxed", b"relaxed"),
        signature_algorithm=algorithm,
        include_headers=SIGNED_HEADERS,
    )
    assert isinstance(header, bytes)
    return header + message


class Dns:
    """The test's DNS: one TXT record at one name; it counts the lookups."""

    def __init__(self, record: bytes | None) -> None:
        self.record, self.names = record, list[str]()
        self.source = KeySource("dns", self.lookup)

    def lookup(self, name: str) -> bytes | None:
        self.names.append(name)
        return self.record if name == KEY_NAME else None


def test_an_rsa_signature_verifies_against_its_dns_key(rsa_key: tuple[bytes, bytes]) -> None:
    private, record = rsa_key
    raw = _sign(private, b"rsa-sha256")
    dns = Dns(record)
    assert email_receipt(raw, dns.source)["dkim"] == {
        "domain": DOMAIN,
        "selector": SELECTOR,
        "body_hash": "verified",
        "signature": "verified",
        "verified": "signature",
        "key_source": "dns",
        "key_sha256": hashlib.sha256(record).hexdigest(),
    }
    assert dns.names == [KEY_NAME]  # RFC 6376 §3.6.2.1: <s>._domainkey.<d>
    assert email_receipt(raw)["dkim"]["verified"] == "body_hash_only"  # --dkim body


def test_an_ed25519_signature_verifies_rfc_8463() -> None:
    private, record = _ed25519()
    raw = _sign(private, b"ed25519-sha256")
    dkim_field = email_receipt(raw, Dns(record).source)["dkim"]
    assert (dkim_field["verified"], dkim_field["signature"]) == ("signature", "verified")
    other = _ed25519()[1]
    failed = email_receipt(raw, Dns(other).source)["dkim"]
    assert (failed["verified"], failed["reason"]) == ("failed", "bad_signature")


def test_a_tampered_signed_header_fails_with_its_reason(rsa_key: tuple[bytes, bytes]) -> None:
    private, record = rsa_key
    raw = _sign(private, b"rsa-sha256")
    tampered = raw.replace(b"CN-2026-0042", b"CN-2026-0043", 1)
    assert tampered != raw
    dkim_field = email_receipt(tampered, Dns(record).source)["dkim"]
    assert dkim_field["body_hash"] == "verified"  # the body is untouched
    assert (dkim_field["verified"], dkim_field["signature"]) == ("failed", "failed")
    assert dkim_field["reason"] == "bad_signature"
    assert dkim_field["key_sha256"] == hashlib.sha256(record).hexdigest()


def test_a_tampered_body_fails_before_any_key_lookup(rsa_key: tuple[bytes, bytes]) -> None:
    private, record = rsa_key
    raw = _sign(private, b"rsa-sha256").replace(b"preserve", b"delete", 1)
    dns = Dns(record)
    dkim_field = email_receipt(raw, dns.source)["dkim"]
    assert dkim_field == {
        "domain": DOMAIN,
        "selector": SELECTOR,
        "body_hash": "mismatch",
        "signature": "not_checked",
        "verified": "failed",
        "reason": "body_hash_mismatch",
    }
    assert dns.names == []


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (None, "key_not_found"),  # NXDOMAIN: the selector is gone or never was
        (b"v=DKIM1; k=rsa; p=", "bad_key"),  # RFC 6376 §3.6.1: an empty p= is a revoked key
        (b"v=DKIM1; k=rsa; p=!!notbase64", "bad_key"),
        (b"v=DKIM1; k=rot13; p=AAAA", "bad_key"),
        (b"v=DKIM1; p=" + b"A" * KEY_RECORD_BYTES_MAX, "bad_key"),  # over the bound
    ],
)
def test_a_missing_or_bad_key_fails_with_its_reason(
    rsa_key: tuple[bytes, bytes], record: bytes | None, reason: str
) -> None:
    raw = _sign(rsa_key[0], b"rsa-sha256")
    dkim_field = email_receipt(raw, Dns(record).source)["dkim"]
    assert (dkim_field["verified"], dkim_field["reason"]) == ("failed", reason)
    assert dkim_field["signature"] == "failed"


def test_an_rsa_key_of_another_signer_fails(rsa_key: tuple[bytes, bytes]) -> None:
    raw = _sign(rsa_key[0], b"rsa-sha256")
    other = _rsa()[1]
    assert email_receipt(raw, Dns(other).source)["dkim"]["reason"] == "bad_signature"


def test_a_dns_that_does_not_answer_records_nothing(rsa_key: tuple[bytes, bytes]) -> None:
    """A timeout says nothing about the message: no 'failed' receipt is written."""

    def down(_name: str) -> bytes | None:
        raise DkimUnavailable("timeout")

    raw = _sign(rsa_key[0], b"rsa-sha256")
    with pytest.raises(DkimUnavailable):
        email_receipt(raw, KeySource("dns", down))


def test_no_dkim_header_means_no_dkim_field() -> None:
    dns = Dns(b"v=DKIM1; p=AAAA")
    assert "dkim" not in email_receipt(MESSAGE, dns.source)
    assert dns.names == []


def test_a_malformed_signature_header_is_refused_naming_it() -> None:
    raw = b"DKIM-Signature: v=1; d=x; d=y\r\n" + MESSAGE
    with pytest.raises(RecordInvalid) as caught:
        email_receipt(raw, Dns(None).source)
    assert (caught.value.code, caught.value.field) == ("bad_dkim", "DKIM-Signature")


def test_a_saved_key_record_verifies_offline(rsa_key: tuple[bytes, bytes]) -> None:
    private, record = rsa_key
    raw = _sign(private, b"rsa-sha256")
    # as `dig +short TXT` prints a record longer than 255: quoted strings, joined
    half = len(record) // 2
    saved = b'"' + record[:half] + b'" "' + record[half:] + b'"\n'
    dkim_field = email_receipt(raw, file_source(saved))["dkim"]
    assert (dkim_field["verified"], dkim_field["key_source"]) == ("signature", "file")
    assert dkim_field["key_sha256"] == hashlib.sha256(record).hexdigest()


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b'"v=DKIM1; p=AAAA', "unbalanced"),
        (b"v=DKIM1; k=rsa", "no p="),
        ("v=DKIM1; p=é".encode(), "ASCII"),
        (b"p=" + b"A" * KEY_RECORD_BYTES_MAX, "over"),
    ],
)
def test_a_bad_saved_key_record_is_refused(data: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_key_record(data)


def test_an_rsa_sha1_signature_is_not_verified(rsa_key: tuple[bytes, bytes]) -> None:
    """RFC 8301 §3.1 retires rsa-sha1: a sound sha1 signature still fails, unlooked-up."""
    private, record = rsa_key
    raw = _sign(private, b"rsa-sha1")
    dns = Dns(record)
    dkim_field = email_receipt(raw, dns.source)["dkim"]
    assert dkim_field["body_hash"] == "verified"
    assert (dkim_field["verified"], dkim_field["reason"]) == ("failed", "weak_algorithm")
    assert dns.names == []
    assert dkim.verify(raw, dnsfunc=lambda *_a, **_k: record)  # dkimpy alone would pass it


def test_the_verifiers_words_reach_the_terminal_clean(rsa_key: tuple[bytes, bytes]) -> None:
    """A hostile key record cannot put a terminal escape or a flood into the CLI's line."""
    raw = _sign(rsa_key[0], b"rsa-sha256")
    hostile = b"v=DKIM1; k=rsa; p=\x1b[2J" + b"B" * 2000
    _, result = read_email(raw, Dns(hostile).source)
    assert result is not None and result.reason == "bad_key"
    assert result.detail and "\x1b" not in result.detail
    assert len(result.detail) <= DETAIL_CHARS_MAX
    assert all(" " <= c <= "~" for c in result.detail)


def test_the_dns_source_asks_dnspython_and_maps_its_faults(
    rsa_key: tuple[bytes, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """dns_source asks for the TXT record at the selector's name, bounded in time; a
    missing name is key_not_found, a timeout or SERVFAIL is no verdict (DkimUnavailable)."""
    import dns.exception
    import dns.resolver
    import dns.rrset

    asked: list[tuple[str, float]] = []
    half = len(rsa_key[1]) // 2
    chunks = [rsa_key[1][:half], rsa_key[1][half:]]  # a long key, in 2 strings

    def answer(name: str, rdtype: str, **options: object) -> SimpleNamespace:
        lifetime = options["lifetime"]
        assert rdtype == "TXT" and isinstance(lifetime, int)
        asked.append((name, lifetime))
        texts = [" ".join(f'"{c.decode()}"' for c in chunks)]
        return SimpleNamespace(rrset=dns.rrset.from_text_list(name, 300, "IN", "TXT", texts))

    monkeypatch.setattr(dns.resolver, "resolve", answer)
    raw = _sign(rsa_key[0], b"rsa-sha256")
    assert email_receipt(raw, dns_source())["dkim"]["verified"] == "signature"
    assert asked == [(KEY_NAME, DNS_TIMEOUT_S)]

    faults: list[tuple[Exception, str | None]] = [
        (dns.resolver.NXDOMAIN(), "key_not_found"),  # type: ignore[no-untyped-call]
        (dns.resolver.LifetimeTimeout(timeout=5.0, errors=[]), None),  # type: ignore[no-untyped-call]
        (dns.resolver.NoNameservers(), None),  # type: ignore[no-untyped-call]  # SERVFAIL everywhere
    ]
    for fault, reason in faults:

        def fail(*_args: object, exc: Exception = fault, **_options: object) -> None:
            raise exc

        monkeypatch.setattr(dns.resolver, "resolve", fail)
        if reason is None:
            with pytest.raises(DkimUnavailable):
                email_receipt(raw, dns_source())
        else:
            assert email_receipt(raw, dns_source())["dkim"]["reason"] == reason


#: A 768-bit RSA test key (``openssl genrsa -traditional 768``): cryptography refuses to
#: generate keys under 1024 bits, and a signer could still publish one.
SMALL_RSA_PEM = (
    b"-----BEGIN RSA PRIVATE KEY-----\n"
    b"MIIBywIBAAJhAMTYsHFzzHq63+zFd3L3XCoSKHbmw8z4MfUfRAaGWSBll8OfhMgK\n"
    b"kDSO4g2UV55qryYisvVt2Ym76ETV5V1YL172DopN+pvse1s/mrNNdt38N0Wc1fBs\n"
    b"MtEbjvdmFb4k6wIDAQABAmEApo4iXRx5+657Ib/DXgdmeEJ88n43Vgr7WkhmKo8q\n"
    b"gnrzepZSp2AovA/ZvVuy91uT8m0Z7RWtvjdeTdheAUJadWiOnEPJuvyYHoViL2G+\n"
    b"IbH4o1hYORjELf708GaDcnNhAjEA8YxiBUgFcSKJ9J13Fza+8G0ixHXfkM9jrGD3\n"
    b"jl1IKZl/H0r+mgOmjdODCjz7eBfHAjEA0J+j3FXKjKfJzQERsbuZIgO4/IMdLDaU\n"
    b"jp7QZuaN8EWRjH1nyy97E4gAL0qVPLG9AjAVVDsXkkuAuPcLlZf9gcUMf+aRCIOM\n"
    b"SvPXNdzGQnBr0/UIs1uWB/p+DY5FqireaOMCMHByW2Pbaf0+QusYdG0T7IoE76RL\n"
    b"F2JJWPE2cKXGByNGnBjZTySZRwFUAKV80cuREQIxAKdLxAtKSXvtaRorfGwkHnN3\n"
    b"ZNkUTmIpeGNGDc8zmHgW6EeVoWKC5mqrzR+e0oZLaA==\n"
    b"-----END RSA PRIVATE KEY-----\n"
)


def test_an_rsa_key_under_1024_bits_fails_even_when_the_signature_holds() -> None:
    """RFC 8301 §3.2: a signature with an RSA key under 1024 bits is not valid."""
    key = serialization.load_pem_private_key(SMALL_RSA_PEM, password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 768
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)
    raw = _sign(SMALL_RSA_PEM, b"rsa-sha256")
    dkim_field = email_receipt(raw, Dns(record).source)["dkim"]
    assert (dkim_field["verified"], dkim_field["reason"]) == ("failed", "key_too_small")
    assert dkim.verify(raw, dnsfunc=lambda *_a, **_k: record, minkey=512)  # sound otherwise


def test_a_body_the_verifier_refutes_counts_as_mismatching(
    rsa_key: tuple[bytes, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our bh= check and dkimpy's disagree: the receipt claims the weaker, refuted-free
    result (body_hash mismatch), never a verified body with a body-hash failure."""
    from node import receipt_sources

    def refuted(*_args: object) -> DkimOutcome:
        return DkimOutcome("failed", "body_hash_mismatch", detail="body hash mismatch")

    monkeypatch.setattr(receipt_sources, "verify_signature", refuted)
    raw = _sign(rsa_key[0], b"rsa-sha256")
    dkim_field = email_receipt(raw, Dns(rsa_key[1]).source)["dkim"]
    assert dkim_field == {
        "domain": DOMAIN,
        "selector": SELECTOR,
        "body_hash": "mismatch",
        "signature": "not_checked",
        "verified": "failed",
        "reason": "body_hash_mismatch",
    }
