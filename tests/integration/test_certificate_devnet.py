"""The judge's certificate of the Budapest case on a devnet of processes (issue 20 item 2).

The Budapest chain of ``test_lifecycle_devnet`` (Japan requests, Brazil is
requested) is filed on a 4-state devnet; ``comity case certificate`` renders it
from Japan's node in English, French and Chinese. The English PDF's first page
is rendered to PNG and read back by OCR (tesseract): it must show the case
reference and every party's name. The French and Chinese PDFs' text layers must
hold the translated headings and the case reference, and the short bundle hash
must be on every page.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pypdfium2 as pdfium
import pytesseract
import pytest
from click.testing import CliRunner

from api.cli import devnet
from api.cli.main import main
from tests.integration.test_lifecycle_devnet import STATES, Desk, _act, _budapest, _digest
from tests.procnet import ProcNet

pytestmark = pytest.mark.slow

CASE = "JP-CYBER-2026-0117"
HEADINGS = {
    "fr": ("Certificat d'une affaire inscrite au registre Comity", "Chronologie", "Parties"),
    "zh": ("账本案件证明书", "时间线", "当事方", "保管链"),
}


def _pages_text(path: Path) -> list[str]:
    pdf = pdfium.PdfDocument(path)
    try:
        return [pdf[i].get_textpage().get_text_range() for i in range(len(pdf))]
    finally:
        pdf.close()


def _ocr_first_page(path: Path) -> str:
    pdf = pdfium.PdfDocument(path)
    try:
        image = pdf[0].render(scale=3).to_pil()
    finally:
        pdf.close()
    return str(pytesseract.image_to_string(image, lang="eng"))


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract-ocr not installed")
def test_certificate_of_the_budapest_case(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devnet, "DEMO_STATES", STATES)
    net = ProcNet(tmp_path / "net")
    net.start()
    desk = Desk(net)
    try:
        _budapest(desk)
        # Brazil collects one of the files it transferred and hands it to Japan.
        transfer_id = desk.get("BR", f"/v1/cases/{CASE}")["entries"][-1]["id"]
        item = [{"sha256": _digest(10), "role": "evidence"}]
        for action, extra in (
            ("collected", {}),
            ("transferred", {"to": {"state": "JP", "agency": "JP central authority"}}),
        ):
            event = _act("custody_event", "BR", CASE, territorial_states=["BR"], evidence=item)
            desk.file(
                "BR", "authority", {**event, "refs": [transfer_id], "action": action, **extra}
            )
        token = desk.reader("JP")["authorization"].removeprefix("Bearer ")
        bundle = tmp_path / "case.bundle"
        bundle.write_bytes(b"stand-in for the case bundle: only its hash is pinned for now")
        sha = hashlib.sha256(bundle.read_bytes()).hexdigest()
        outs = {}
        for lang in ("en", "fr", "zh"):
            out, html = tmp_path / f"case-{lang}.pdf", tmp_path / f"case-{lang}.html"
            args = ["case", "certificate", "--node", net.urls["JP"], "--case", CASE]
            args += ["--token", token, "--bundle", str(bundle), "--lang", lang]
            args += ["--genesis", str(net.root / "genesis.json")]
            result = CliRunner().invoke(main, [*args, "--out", str(out), "--html", str(html)])
            assert result.exit_code == 0, result.output
            assert f"bundle sha256 {sha}" in result.output
            assert "7 records, verified" in result.output
            outs[lang] = out
        # Another consortium's genesis: the records' proofs fail, and the report says so.
        other = tmp_path / "other-genesis.json"
        doc = json.loads((net.root / "genesis.json").read_text())
        other.write_text(json.dumps({**doc, "chain_id": "another-chain"}))
        wrong = tmp_path / "wrong.pdf"
        args = ["case", "certificate", "--node", net.urls["JP"], "--case", CASE, "--token"]
        args += [token, "--genesis", str(other), "--out", str(wrong)]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0 and "NOT VERIFIED" in result.output, result.output
        text = "\n".join(_pages_text(wrong))
        assert "NOT VERIFIED" in text and "FAILED" in text
        # France is not a party: its node serves the headers only, and the report says so.
        france = tmp_path / "france.pdf"
        fr_token = desk.reader("FR")["authorization"].removeprefix("Bearer ")
        args = ["case", "certificate", "--node", net.urls["FR"], "--case", CASE, "--token"]
        result = CliRunner().invoke(main, [*args, fr_token, "--out", str(france)])
        assert result.exit_code == 2 and "has no record" in result.output, result.output
    finally:
        net.stop_all()

    seen = _ocr_first_page(outs["en"])
    assert CASE in seen, seen
    for _, name in (("JP", "Japan"), ("BR", "Brazil")):
        assert name in seen, (name, seen)
    short = " ".join(sha[i : i + 4] for i in range(0, 16, 4))
    for lang, path in outs.items():
        pages = _pages_text(path)
        assert all(short in page for page in pages), (lang, short)
        text = "\n".join(pages)
        assert CASE in text and "Japan" in text and "Brazil" in text
        assert "NOT VERIFIED" not in text and "未验证" not in text and "NON VÉRIFIÉ" not in text
        assert "preservation_response" in text and "evidence_transferred" in text
        flat = " ".join(text.split())  # cells wrap lines in the text layer
        assert "Budapest Convention" in flat and "Art 31" in flat  # read from the bodies
        assert "header only" not in text and "仅记录头" not in text
        assert _digest(10) in flat and "collected" in flat and "transferred → JP" in flat
        for heading in HEADINGS.get(lang, ()):
            assert heading in text, (lang, heading)
        page_html = (tmp_path / f"case-{lang}.html").read_text()
        assert sha in page_html and CASE in page_html
