"""exchange_receipt's chain rules over a real store (ledger/acts_context.py, docs/CHANNELS.md).

A receipt anchors one request or answer of its case, is recorded by a state
that record concerns, and is recorded once per (actor state, channel,
external id): at admission (409 ``duplicate_receipt``), and in a block, also
when the first copy is only earlier in the same block.
"""

from __future__ import annotations

from typing import Any

import pytest

from ledger import keyspace as ks
from ledger.acts import validate_act
from ledger.acts_context import StoreActContext, check_act_context
from ledger.acts_fields import ActPolicy
from ledger.canonical import parse_json
from ledger.errors import Conflict, Forbidden, RecordInvalid
from ledger.private import split
from ledger.records import Envelope, parse_envelope
from ledger.store import Store
from tests.factory import ChainBuilder, key, sign_record
from tests.unit.test_acts import make
from tests.unit.test_acts_context import CN_AUTH, CN_INV, TH_AUTH, VN_AUTH, FakeChain

CN_INTEGRATION = key("cn-integration")


def _roles(signer: str) -> frozenset[str]:
    if signer == CN_INTEGRATION.public_hex:
        return frozenset({"integration"})
    return FakeChain().signer_roles(signer)


class Chain:
    """Committed blocks in a memory store, and contexts over it."""

    def __init__(self) -> None:
        self.store, self.builder, self.maker = Store.open_memory(), ChainBuilder(), FakeChain()

    def load(self, record_id: str) -> Envelope:
        """As a party's node reads it: with the private body it holds."""
        envelope = parse_envelope(parse_json(self.store.get_envelope_bytes(record_id) or b"null"))
        body = self.store.get_body(record_id)
        return envelope if body is None else envelope.with_body(body)

    def context(self, *, ingress: bool) -> StoreActContext:
        return StoreActContext(self.store, self.load, _roles, ingress=ingress)

    def commit(self, *envelopes: Envelope) -> None:
        block = self.builder.next_block(list(envelopes))
        self.store.commit_block(block.header, block.envelopes, block.certificate)

    def request(self) -> Envelope:
        request = self.maker.make("mla_request", CN_AUTH, "CN")
        self.commit(request)
        return request

    def receipt(self, anchored: Envelope, signer: Any = CN_INTEGRATION, **changes: Any) -> Envelope:
        state = changes.pop("state", "CN")
        return self.maker.make(
            "exchange_receipt",
            signer,
            state,
            refs=[anchored.id],
            territorial_states=[state],
            **changes,
        )


def test_a_receipt_of_a_committed_request_passes_and_is_indexed() -> None:
    chain = Chain()
    request = chain.request()
    receipt = chain.receipt(request)
    check_act_context(receipt, chain.context(ingress=True))
    chain.commit(receipt)
    content = receipt.content
    key_ = ks.receipt_key("CN", content["channel"], content["external_id"])
    assert [rid for _, rid in chain.store.search("receipt", key_)] == [receipt.id]
    assert [rid for _, rid in chain.store.search("receipt_of", request.id)] == [receipt.id]


@pytest.mark.parametrize("ingress", [True, False])
def test_the_same_message_twice_is_refused_409_duplicate_receipt(ingress: bool) -> None:
    chain = Chain()
    request = chain.request()
    chain.commit(chain.receipt(request))
    again = chain.receipt(request, sent_at="2026-02-28T23:30:00Z")  # another record, same key
    with pytest.raises(Conflict) as caught:
        check_act_context(again, chain.context(ingress=ingress))
    assert (caught.value.code, caught.value.field) == ("duplicate_receipt", "record.external_id")
    assert caught.value.status == 409


def test_two_copies_in_one_block_the_second_is_refused() -> None:
    """Both copies pass admission while neither is committed; the block's pending
    context refuses the second, at the proposer and at every validator alike."""
    chain = Chain()
    request = chain.request()
    first, second = chain.receipt(request), chain.receipt(request, nonce="nonce-other-1")
    for copy_ in (first, second):
        check_act_context(copy_, chain.context(ingress=True))
    block = chain.context(ingress=False).with_pending([first])
    with pytest.raises(Conflict, match="already anchored"):
        check_act_context(second, block)


def test_another_channel_or_another_state_is_no_duplicate() -> None:
    chain = Chain()
    request = chain.request()
    chain.commit(chain.receipt(request))
    check_act_context(chain.receipt(request, channel="eedes"), chain.context(ingress=False))
    thai = chain.receipt(request, TH_AUTH, state="TH")  # the requested state's own receipt
    check_act_context(thai, chain.context(ingress=False))


def test_a_state_the_request_does_not_concern_is_refused() -> None:
    chain = Chain()
    request = chain.request()  # CN to TH
    with pytest.raises(Forbidden) as caught:
        check_act_context(chain.receipt(request, VN_AUTH, state="VN"), chain.context(ingress=True))
    assert (caught.value.code, caught.value.field) == ("not_concerned", "record.actor.state")


def test_a_receipt_names_a_committed_request_of_its_case() -> None:
    chain = Chain()
    request = chain.request()
    ghost = chain.maker.make("mla_request", CN_AUTH, "CN", nonce="nonce-ghost-1")
    with pytest.raises(RecordInvalid) as caught:
        check_act_context(chain.receipt(ghost), chain.context(ingress=True))
    assert (caught.value.code, caught.value.field) == ("ref_not_found", "record.refs[0]")
    with pytest.raises(RecordInvalid) as caught:
        check_act_context(
            chain.receipt(request, case_ref="CN-OTHER-1"), chain.context(ingress=True)
        )
    assert (caught.value.code, caught.value.field) == ("case_mismatch", "record.case_ref")


def test_a_receipt_anchors_a_request_or_answer_not_a_measure_or_a_receipt() -> None:
    chain = Chain()
    search = chain.maker.make("search_seizure", CN_INV, "CN")
    chain.commit(search)
    with pytest.raises(RecordInvalid) as caught:
        check_act_context(chain.receipt(search), chain.context(ingress=True))
    assert (caught.value.code, caught.value.field) == ("ref_wrong_type", "record.refs[0]")
    request = chain.request()
    receipt = chain.receipt(request)
    chain.commit(receipt)
    with pytest.raises(RecordInvalid) as caught:
        check_act_context(
            chain.receipt(receipt, external_id="other@x"), chain.context(ingress=True)
        )
    assert caught.value.code == "ref_wrong_type"


def test_a_receipt_is_refused_before_catalogue_version_2() -> None:
    """docs/ACTS.md §18: nothing of version 2 enters a chain before its members voted."""
    record = make("exchange_receipt")
    assert validate_act(record, ActPolicy(version=2)).type == "exchange_receipt"
    with pytest.raises(RecordInvalid) as caught:
        validate_act(record, ActPolicy(version=1))
    assert (caught.value.code, caught.value.field) == ("not_in_catalogue_version", "record.type")


def test_a_mailbox_in_a_clear_receipt_is_refused_so_adapters_file_them_private() -> None:
    """docs/CHANNELS.md: a message id or endpoint often names a mailbox; in a consortium
    act the linter refuses it (docs/ACTS.md §11), the private receipt takes it."""
    record = make(
        "exchange_receipt", visibility="consortium", external_id="20260301.4411@police.example.fr"
    )
    with pytest.raises(RecordInvalid) as caught:
        validate_act(record)
    assert (caught.value.code, caught.value.field) == ("personal_identifier", "record.external_id")
    assert validate_act({**record, "visibility": "parties"}).type == "exchange_receipt"


def _private(receipt: Envelope) -> Envelope:
    """``receipt`` as a private act: its header signed, its body beside it."""
    header, body = split(
        receipt.record, retain_until="2031-03-01T00:00:00Z", ref_parties=lambda _: []
    )
    return sign_record(CN_INTEGRATION, header).with_body(body)


def test_private_receipts_count_in_a_block_only_with_the_same_parties() -> None:
    """Every party of a private receipt judges it alike: an earlier receipt of its key
    counts only if it has the same parties (same anchored record, same counterpart);
    admission, at the author's node that holds them all, refuses any of the key."""
    chain = Chain()
    request = chain.maker.make("mla_request", CN_AUTH, "CN", territorial_states=["TH", "VN"])
    chain.commit(request)
    to_thailand = _private(chain.receipt(request, counterpart_state="TH"))
    assert to_thailand.type == "exchange_receipt" and to_thailand.record["parties"] == [
        "CN",
        "TH",
    ]
    chain.commit(to_thailand)
    to_viet_nam = _private(chain.receipt(request, counterpart_state="VN", nonce="nonce-vn-0001"))
    check_act_context(to_viet_nam, chain.context(ingress=False))  # VN holds no CN-TH body
    with pytest.raises(Conflict, match="already anchored"):
        check_act_context(to_viet_nam, chain.context(ingress=True))
    again = _private(chain.receipt(request, counterpart_state="TH", nonce="nonce-th-0002"))
    with pytest.raises(Conflict) as caught:
        check_act_context(again, chain.context(ingress=False))
    assert caught.value.code == "duplicate_receipt"
    # A clear receipt of the key does not count the private one in a block (a non-party
    # cannot see it), but admission at CN's node does.
    clear = chain.receipt(request, nonce="nonce-clear-01", external_id="no-at-sign-1")
    check_act_context(clear, chain.context(ingress=False))


def test_a_clear_receipt_of_a_private_act_is_refused() -> None:
    chain = Chain()
    request = _private_request(chain)
    with pytest.raises(RecordInvalid) as caught:
        check_act_context(chain.receipt(request), chain.context(ingress=True))
    assert (caught.value.code, caught.value.field) == ("receipt_in_clear", "record.visibility")


def _private_request(chain: Chain) -> Envelope:
    clear = chain.maker.make("mla_request", CN_AUTH, "CN", nonce="nonce-private-1")
    header, body = split(
        clear.record, retain_until="2031-03-01T00:00:00Z", ref_parties=lambda _: []
    )
    request = sign_record(CN_AUTH, header).with_body(body)
    chain.commit(request)
    return chain.load(request.id)


def test_the_counterpart_is_a_state_the_record_concerns() -> None:
    chain = Chain()
    request = chain.request()  # CN to TH: VN is not concerned
    with pytest.raises(RecordInvalid) as caught:
        check_act_context(
            chain.receipt(request, counterpart_state="VN"), chain.context(ingress=True)
        )
    assert (caught.value.code, caught.value.field) == ("not_concerned", "record.counterpart_state")
