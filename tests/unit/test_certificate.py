"""The judge's certificate: hostile strings escaped, caps, languages and fallback, the
builder against a hostile node (issue 20 item 2, docs/AUDIT.md)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest

from api.certificate import render
from api.certificate.source import model_from_node
from api.cli.client import ClientFailure
from ledger.audit.certificate_model import (
    CHECK_NAMES,
    TIMELINE_ENTRIES_MAX,
    CaseModel,
    Check,
    Party,
    TimelineEntry,
    bounded,
)
from ledger.errors import ClientError

SHA = "ab" * 32
HOSTILE = '<script>alert("x")</script>'


def _entry(n: int, agency: str = "JP central authority") -> TimelineEntry:
    return TimelineEntry(
        record_id=f"{n:064x}",
        occurred_at="2026-03-01T10:00:00Z",
        commit_time="2026-03-01T10:00:02Z",
        height=n,
        actor_state="JP",
        agency=agency,
        type="preservation_request",
        territorial_states=("BR",),
        instrument="Budapest Convention",
        article="Art 29",
    )


def _model(**fields: Any) -> CaseModel:
    base: dict[str, Any] = {
        "case_ref": "JP-CYBER-2026-0117",
        "generated_at": "2026-03-02T08:30:00Z",
        "chain_id": "comity-test",
        "genesis_hash": "cd" * 32,
        "bundle_sha256": SHA,
        "source": "test",
        "checks": tuple(Check(n, "passed") for n in CHECK_NAMES),
        "parties": (Party("JP", "Japan"), Party("BR", "Brazil")),
        "timeline": (_entry(1),),
        "sovereignty": (),
        "custody": (),
    }
    return CaseModel(**{**base, **fields})


def test_a_hostile_agency_is_escaped_in_the_html() -> None:
    html = render.render_html(_model(timeline=(_entry(1, agency=HOSTILE),)), "en")
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html


def test_verified_only_when_every_check_passed() -> None:
    assert _model().verified
    some = tuple(Check(n, "passed") for n in CHECK_NAMES[1:])
    assert not _model(checks=some).verified
    failed = (*some, Check(CHECK_NAMES[0], "failed"))
    assert not _model(checks=failed).verified
    assert "NOT VERIFIED" in render.render_html(_model(checks=failed), "en")


def test_the_timeline_is_cut_to_its_cap_with_a_note() -> None:
    many = tuple(_entry(i) for i in range(TIMELINE_ENTRIES_MAX + 7))
    model = bounded(_model(timeline=many))
    assert len(model.timeline) == TIMELINE_ENTRIES_MAX
    assert model.omitted == {"timeline": 7}
    assert "timeline: 7" in render.render_html(_model(timeline=many), "en")


def test_dates_in_the_locale_format_and_utc() -> None:
    assert (
        render.when("2026-03-01T10:00:00Z", "fr")
        == "1 mars 2026, 10:00:00 (2026-03-01 10:00:00 UTC)"
    )
    assert render.when("2026-03-01T10:00:00Z", "zh").startswith("2026年3月1日")
    assert render.when("not a date", "en") == "not a date"


def test_french_headings_and_english_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    html = render.render_html(_model(), "fr")
    assert "Chronologie" in html and "Référence de l&#39;affaire" in html
    # A string the catalogue lacks is rendered in English.
    partial = {k: v for k, v in render.messages("fr").items() if k != "Timeline"}
    monkeypatch.setattr(render, "messages", lambda lang: partial)
    html = render.render_html(_model(), "fr")
    assert "Timeline" in html and "Chronologie" not in html


def test_every_template_string_is_translated_in_fr_and_zh() -> None:
    from babel.messages.pofile import read_po

    with (render.HERE / "locale" / "certificate.pot").open("rb") as handle:
        wanted = {m.id for m in read_po(handle) if m.id}
    for lang in ("fr", "zh"):
        assert wanted - set(render.messages(lang)) == set(), lang


def test_an_unknown_language_is_refused() -> None:
    with pytest.raises(ClientError) as caught:
        render.render_html(_model(), "de")
    assert (caught.value.code, caught.value.field) == ("bad_lang", "lang")


def test_the_pdf_has_the_short_hash_on_every_page_and_chinese_text() -> None:
    many = tuple(_entry(i) for i in range(40))  # enough for several pages
    pdf = pdfium.PdfDocument(render.render_pdf(_model(timeline=many), "zh"))
    pages = [pdf[i].get_textpage().get_text_range() for i in range(len(pdf))]
    pdf.close()
    assert len(pages) > 1
    assert all("abab abab abab abab" in page for page in pages)
    assert "时间线" in "".join(pages)


class HostileNode:
    """A node answering with wrong types and markup everywhere."""

    def status(self) -> dict[str, Any]:
        return {"chain_id": ["not", "a", "string"]}

    def members(self) -> dict[str, Any]:
        return {"members": [{"state": "JP", "name": HOSTILE}, "junk", {"state": 7}]}

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        if path == "/v1/genesis":
            return {"chain_id": "x"}
        if path.startswith("/v1/cases/"):
            rows: list[Any] = [
                {"id": "11" * 32, "actor_state": "JP", "agency": HOSTILE, "height": "9"},
                {"id": "not an id"},
                42,
            ]
            return {"entries": rows, "next_cursor": None}
        if path.startswith("/v1/acts/"):
            return {"id": "11" * 32, "envelope": {"record": {"type": "private_act"}}}
        if path.startswith("/v1/records/"):
            evidence = [{"sha256": "22" * 32}, "x", {"sha256": HOSTILE}]
            return {"content": {"evidence": evidence, "legal_basis": {"article": 7}}}
        if path.startswith("/v1/evidence/"):
            return {"custody_chains": [{"ref": 5, "events": [{"action": HOSTILE}]}]}
        raise ClientFailure(404, "not_found", path)


def test_a_hostile_node_builds_a_model_that_renders_escaped() -> None:
    model = model_from_node(HostileNode(), "C-1", SHA)
    assert [e.record_id for e in model.timeline] == ["11" * 32]
    entry = model.timeline[0]
    assert entry.height is None and entry.agency == HOSTILE
    assert not entry.private_header_only and entry.article is None
    assert model.chain_id == ""
    assert [p.name for p in model.parties] == [HOSTILE]
    assert model.custody[0].events[0].action == HOSTILE
    assert {c.status for c in model.checks} == {"not_run"} and not model.verified
    html = render.render_html(model, "en")
    assert HOSTILE not in html and "NOT VERIFIED" in html


def test_a_private_act_the_token_may_not_read_is_a_header() -> None:
    class NotAParty(HostileNode):
        def get(self, path: str, **params: Any) -> dict[str, Any]:
            if path.startswith("/v1/records/"):
                raise ClientFailure(403, "not_a_party", path)
            return super().get(path)

    model = model_from_node(NotAParty(), "C-1", SHA)
    assert model.timeline[0].private_header_only and model.custody == ()
    assert "header only" in render.render_html(model, "en")


def test_a_case_view_without_entries_fails_by_name() -> None:
    class Broken(HostileNode):
        def get(self, path: str, **params: Any) -> dict[str, Any]:
            return {"entries": "nope"} if path.startswith("/v1/cases/") else super().get(path)

    with pytest.raises(ClientFailure) as caught:
        model_from_node(Broken(), "C-1", SHA)
    assert caught.value.code == "bad_reply"


def test_the_cli_refuses_a_hostile_case_ref_and_language(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from api.cli.main import main

    out = tmp_path / "r.pdf"
    base = ["case", "certificate", "--node", "http://127.0.0.1:9", "--out", str(out)]
    bad_ref = CliRunner().invoke(main, [*base, "--case", "A\nB"])
    assert bad_ref.exit_code == 2 and "--case must be" in bad_ref.output
    long_ref = CliRunner().invoke(main, [*base, "--case", "A" * 129])
    assert long_ref.exit_code == 2 and "--case must be" in long_ref.output
    bad_lang = CliRunner().invoke(main, [*base, "--case", "C-1", "--lang", "de"])
    assert bad_lang.exit_code == 2 and "--lang" in bad_lang.output
    assert not out.exists()


def test_without_a_bundle_the_pin_is_the_reports_own_content() -> None:
    from dataclasses import replace

    from api.cli.certificate import views_sha256

    model = _model(bundle_sha256="")
    pin = views_sha256(model)
    assert len(pin) == 64 and pin == views_sha256(replace(model, bundle_sha256=SHA))
    assert pin != views_sha256(replace(model, case_ref="JP-CYBER-2026-0118"))


@pytest.mark.skipif(shutil.which("zbarimg") is None, reason="zbar-tools not installed")
def test_the_qr_code_on_every_page_decodes_to_the_bundle_hash(tmp_path: Path) -> None:
    many = tuple(_entry(i) for i in range(40))
    pdf = pdfium.PdfDocument(render.render_pdf(_model(timeline=many), "en"))
    try:
        assert len(pdf) > 1
        for i in range(len(pdf)):
            image = tmp_path / f"page-{i}.png"
            pdf[i].render(scale=3).to_pil().save(image)
            decoded = subprocess.run(
                ["zbarimg", "-q", "--raw", str(image)], capture_output=True, text=True, check=True
            ).stdout.strip()
            assert decoded == render.QR_PREFIX + SHA, (i, decoded)
    finally:
        pdf.close()
