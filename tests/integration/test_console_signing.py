"""Signing in the browser, end to end, on a 4-node devnet of real processes (issue 21).

The devnet is ``comity devnet``'s layout (``tests/procnet.py``), with the console
tokens it makes. In Debian's Chromium, reaching those origins only:

* CN's console is opened at the URL ``comity devnet`` prints (``/#token=…``): the
  token lands in the tab's sessionStorage and leaves the address bar at once;
* as CN's investigator (``CN/investigator.key`` through the file input) the New act
  form refuses an empty case reference on its field, shows the node's 422 on the
  field it names, then files a preservation request for TH's territory, with an
  evidence file hashed in the browser, and sees it committed at a height;
* in TH's console, with TH's authority key, the notice is answered (an objection on
  a ground of the catalogue's vocabulary) and turns answered live in the inbox;
* CN's desk shows TH's answer; the act's bundle (``GET /v1/records/{id}/bundle``)
  passes the Verify page under the devnet's genesis file, and with one byte changed
  it is refused.

``COMITY_SCREENSHOTS=DIR`` saves the New act view and the answer dialog, ltr and rtl.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.cli import devnet
from ledger.records import format_time
from node.clock import utcnow
from tests.procnet import ProcNet

CHROMIUM = Path("/usr/bin/chromium")
playwright_sync = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
TIMEOUT_MS = 30_000
EVIDENCE = b"disk image of the seized laptop, block 0\n"


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcNet]:
    net = ProcNet(tmp_path_factory.mktemp("devnet"), 4)
    assert net.states == ["CN", "FR", "TH", "VN"]
    net.start()
    yield net
    net.stop_all()


@pytest.fixture(scope="module")
def context(net: ProcNet) -> Iterator[Any]:
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
        )
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        allowed = tuple(url + "/" for url in net.urls.values())
        elsewhere: list[str] = []

        def same_origin_only(route: Any) -> None:
            if route.request.url.startswith(allowed):
                route.continue_()
            else:
                elsewhere.append(route.request.url)
                route.abort()

        context.route("**/*", same_origin_only)
        yield context
        context.close()
        browser.close()
        assert elsewhere == [], f"requests to other origins: {elsewhere}"


def _shot(page: Any, name: str) -> None:
    if shots := os.environ.get("COMITY_SCREENSHOTS"):
        page.screenshot(path=str(Path(shots) / name), full_page=True)


def _console(context: Any, net: ProcNet, state: str, view: str) -> Any:
    """``state``'s console opened at the URL ``comity devnet`` prints, then ``view``."""
    url = devnet.console_url(net.root, {"state": state, "api_url": net.urls[state]})
    secret = (net.root / state / devnet.CONSOLE_TOKEN).read_text().strip()
    assert url.endswith(f"/#token={secret}")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto(url)
    page.wait_for_selector("body[data-ready='true']")
    assert page.evaluate("sessionStorage.getItem('comity.token')") == secret
    assert "token" not in page.url and page.evaluate("location.hash") == ""
    # about:blank and the console: replaceState took the token's entry, it added none.
    assert page.evaluate("history.length") == 2
    page.wait_for_selector(f"#nav-{view}", state="visible")
    page.click(f"#nav-{view}")
    return page


UNLABELLED = """root => [...document.querySelectorAll(`${root} input, ${root} select, ${root} textarea`)]
  .filter(c => c.labels.length === 0 && !c.getAttribute("aria-label")).map(c => c.id || c.outerHTML)"""


def _unlabelled(page: Any, root: str) -> list[str]:
    """Every form control under ``root`` that has no label (WCAG 2.1 SC 1.3.1, 4.1.2)."""
    found: list[str] = page.evaluate(f"({UNLABELLED})({json.dumps(root)})")
    return found


def _load_key(page: Any, prefix: str, path: Path) -> None:
    page.set_input_files(f"#{prefix}-key-file", str(path))
    page.click(f"#{prefix}-key-load")
    page.wait_for_selector(f"#{prefix}-key-status:has-text('Key loaded:')")  # not "No key loaded."


def _file_request(page: Any, net: ProcNet, tmp_path: Path) -> tuple[str, int]:
    page.wait_for_selector("#view-new[data-loaded='true']")
    assert page.is_hidden("#new-key-unlock")  # nothing stored in this browser yet
    page.check("#new-key-keep")
    page.fill("#new-key-label", "CN investigator")
    page.fill("#new-key-pass", "correct horse battery")
    _load_key(page, "new", net.root / "CN" / "investigator.key")
    # Kept in IndexedDB, encrypted; a reload forgets the tab's key, the store unlocks it.
    page.reload()
    page.wait_for_selector("#view-new[data-loaded='true']")
    assert "No key loaded" in page.inner_text("#new-key-status")
    page.wait_for_selector("#new-key-unlock", state="visible")
    assert "CN investigator" in page.inner_text("#new-key-stored")
    page.fill("#new-key-unlock-pass", "wrong horse battery")
    page.click("#new-key-unlock")
    page.wait_for_selector("#new-key-error:has-text('bad_passphrase')")
    page.fill("#new-key-unlock-pass", "correct horse battery")
    page.click("#new-key-unlock")
    page.wait_for_selector("#new-key-status:has-text('Key loaded:')")
    assert page.evaluate("localStorage.length") == 0
    page.click("#new-key-delete")
    page.wait_for_selector("#new-key-unlock", state="hidden")
    assert page.input_value("#newact-type") == "preservation_request"
    # Checked in the browser first: the empty case reference is named on its field.
    page.click("#newact-submit")
    page.wait_for_selector("#nf-case_ref[aria-invalid='true']")
    assert "record.case_ref" in page.inner_text("#nf-case_ref-error")
    assert "required" in page.inner_text("#nf-case_ref-error")
    assert page.get_attribute("#nf-case_ref", "aria-describedby") == (
        "nf-case_ref-hint nf-case_ref-error"
    )
    assert page.evaluate("document.activeElement.id") == "nf-case_ref"  # focus on the first
    assert _unlabelled(page, "#view-new") == []
    page.fill("#nf-case_ref", "CASE-BROWSER-1")
    page.fill("#nf-territorial_states", "TH")
    page.fill("#nf-custodian-name", "Example Hosting Ltd")
    page.check("#nf-data_category-subscriber")
    page.check("#nf-data_category-traffic")
    page.fill("#nf-legal_basis-instrument", "Budapest Convention")
    page.fill("#nf-legal_basis-article", "Art 29")
    page.click("#nf-evidence-add")
    evidence = tmp_path / "laptop.img"
    evidence.write_bytes(EVIDENCE)
    page.set_input_files("#nf-evidence-0-sha256-file", str(evidence))
    page.wait_for_selector("#nf-evidence-0-sha256-file-status:has-text('SHA-256 computed')")
    assert page.input_value("#nf-evidence-0-sha256") == hashlib.sha256(EVIDENCE).hexdigest()
    assert page.input_value("#nf-evidence-0-size") == str(len(EVIDENCE))
    assert page.input_value("#nf-evidence-0-name") == "laptop.img"
    # The node's refusal lands on the field it names (expires_at before occurred_at).
    page.fill("#nf-expires_at", "2020-01-01T00:00:00.000Z")
    page.click("#newact-submit")
    page.wait_for_selector("#nf-expires_at[aria-invalid='true']")
    assert "record.expires_at" in page.inner_text("#nf-expires_at-error")
    assert "refused" in page.inner_text("#newact-result")
    page.fill("#nf-expires_at", format_time(utcnow() + timedelta(days=60)))
    page.click("#newact-submit")
    page.wait_for_selector("#newact-result.pass")
    assert page.get_attribute("#nf-expires_at", "aria-invalid") is None
    record_id = page.get_attribute("#newact-result", "data-id")
    height = int(page.get_attribute("#newact-result", "data-height"))
    assert f"{record_id} at height {height}" in page.inner_text("#newact-result")
    return record_id, height


def _answer(page: Any, net: ProcNet, record_id: str) -> None:
    row = f"#notices tr[data-id='{record_id}']"
    page.wait_for_selector(row)
    assert "Pending" in page.inner_text(row)
    page.select_option("#language", "ar")
    page.wait_for_selector("html[lang='ar'][dir='rtl']", state="attached")
    page.click(f"{row} button")
    page.click("#answer-open")
    page.wait_for_selector("#answer-dialog[open]")
    _shot(page, "answer-rtl.png")
    page.click("#answer-close")
    page.wait_for_selector("#answer-dialog", state="detached")
    page.select_option("#language", "en")
    page.wait_for_selector("html[lang='en'][dir='ltr']", state="attached")
    page.click(f"{row} button")
    page.click("#answer-open")
    page.wait_for_selector("#answer-dialog[open]")
    assert _unlabelled(page, "#answer-dialog") == []
    assert page.evaluate("document.activeElement.id") == "answer-response"
    _load_key(page, "answer", net.root / "TH" / "authority.key")
    options = page.eval_on_selector_all("#answer-response option", "os => os.map(o => o.value)")
    assert options == ["acknowledged", "consented", "objected", "refused"]
    assert page.is_hidden("#answer-reason") and page.is_hidden("#answer-ground")
    page.select_option("#answer-response", "objected")
    assert page.is_visible("#answer-ground") and page.is_visible("#answer-reason")
    grounds = page.eval_on_selector_all("#answer-ground option", "os => os.map(o => o.value)")
    assert "territoriality" in grounds and "dual_criminality" in grounds
    page.click("#answer-submit")  # an objection needs its reason
    page.wait_for_selector("#answer-reason[aria-invalid='true']")
    assert "record.reason" in page.inner_text("#answer-reason-error")
    page.select_option("#answer-ground", "territoriality")
    page.fill("#answer-reason", "The data sits on a server outside the requested territory.")
    _shot(page, "answer-ltr.png")
    page.click("#answer-submit")
    page.wait_for_selector("#answer-result.pass")
    assert "at height" in page.inner_text("#answer-result")
    page.click("#answer-close")
    page.wait_for_selector(f"{row} .badge.ok")  # answered, live, without a reload
    assert "Answered" in page.inner_text(row)


def _verify_bundle(page: Any, net: ProcNet, record_id: str, tmp_path: Path) -> None:
    token = (net.root / "CN" / devnet.CONSOLE_TOKEN).read_text().strip()
    reply = httpx.get(
        f"{net.urls['CN']}/v1/records/{record_id}/bundle",
        headers={"authorization": f"Bearer {token}"},
        timeout=20,
    )
    assert reply.status_code == 200, reply.text
    good = tmp_path / "bundle.json"
    good.write_text(reply.text)
    text = reply.text
    at = text.index('"nonce": "') + len('"nonce": "') if '"nonce": "' in text else None
    if at is None:
        at = text.index('"nonce":"') + len('"nonce":"')
    bad = tmp_path / "bundle-bad.json"
    bad.write_text(text[:at] + ("1" if text[at] == "0" else "0") + text[at + 1 :])
    page.click("#nav-verify")
    page.set_input_files("#bundle-file", str(good))
    page.set_input_files("#genesis-file", str(net.root / "genesis.json"))
    page.click("#verify-form button[type=submit]")
    page.wait_for_selector("#summary.pass")
    assert page.locator("#checks li.fail").count() == 0
    page.set_input_files("#bundle-file", str(bad))
    page.click("#verify-form button[type=submit]")
    page.wait_for_selector("#summary.fail")
    assert page.locator("#checks li.fail").count() >= 1


def test_file_answer_and_verify_an_act_signed_in_the_browser(
    net: ProcNet, context: Any, tmp_path: Path
) -> None:
    cn = _console(context, net, "CN", "new")
    record_id, height = _file_request(cn, net, tmp_path)
    _shot(cn, "newact-ltr.png")
    for state in net.states:  # committed everywhere, as a private act of CN and TH
        assert net.wait_committed(state, record_id) == height
    header = httpx.get(f"{net.urls['FR']}/v1/records/{record_id}", timeout=10).json()
    assert header["envelope"]["record"]["type"] == "private_act"
    assert header["envelope"]["record"]["parties"] == ["CN", "TH"]

    th = _console(context, net, "TH", "inbox")
    _answer(th, net, record_id)
    assert th.errors == []

    cn.click("#nav-desk")
    row = cn.wait_for_selector(f"#requests tr[data-id='{record_id}']")
    assert row is not None and "TH: objected" in row.inner_text()
    cn.click("#nav-new")
    cn.wait_for_selector("#view-new[data-loaded='true']")
    cn.select_option("#language", "ar")
    cn.wait_for_selector("html[lang='ar'][dir='rtl']", state="attached")
    cn.wait_for_selector("#view-new[data-loaded='true'] #nf-case_ref")
    _shot(cn, "newact-rtl.png")
    cn.select_option("#language", "en")
    cn.wait_for_selector("html[lang='en']", state="attached")
    _verify_bundle(cn, net, record_id, tmp_path)
    assert cn.errors == []
    assert json.loads((net.root / "nodes.json").read_text())[0]["state"] == net.states[0]
