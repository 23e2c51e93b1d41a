"""The console and /docs in Debian's Chromium, with every other origin cut off (issue 21).

A node's app is served by uvicorn on loopback; Chromium (``/usr/bin/chromium``,
driven by Playwright for Python, which downloads no browser here) may reach
that origin only: every host name but 127.0.0.1 resolves to nothing, and any
request elsewhere is aborted and recorded, so a page that still needed a CDN
would render blank and fail. Then:

* ``/docs`` renders Swagger UI with the node's operations;
* the Verify page checks a real bundle (a chain that admitted a member by vote)
  under its genesis hash and lists every check as passed, refuses the same file
  with one byte changed, naming ``bad_record_signature``, and switches to French;
* a case bundle (``comity-case/1``) passes its whole-case checks too (caseclaims.js),
  and a reason its records do not bear out is refused, named ``bad_case_reason``,
  with the reason's sentence in Arabic.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from api.app import create_app
from ledger.audit.chain import genesis_hash
from ledger.audit_source import StoreSource, build_bundle
from tests import console_case
from tests.audit_chain import AuditChain
from tests.cluster import Cluster

CHROMIUM = Path("/usr/bin/chromium")
playwright_sync = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
TIMEOUT_MS = 20_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    node = next(iter(Cluster(1).nodes.values()))
    port = _free_port()
    config = uvicorn.Config(create_app(node), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    chain = AuditChain()
    chain.grow(2)
    chain.add_member("BR", "Brazil")
    chain.grow(2)
    digest = hashlib.sha256(b"seized laptop").hexdigest()
    subject = chain.envelope("FR", evidence=[{"sha256": digest, "name": "laptop.img"}])
    chain.commit([subject])
    chain.grow(1)
    source = StoreSource(chain.app.store, chain.genesis_json)
    # In a thread: Playwright's sync API keeps an event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        made = pool.submit(
            asyncio.run, build_bundle(source, [chain.record_id(subject)], latest=True)
        )
        doc = made.result(60)
    folder = tmp_path_factory.mktemp("bundles")
    good, bad = folder / "case.bundle.json", folder / "tampered.bundle.json"
    text = json.dumps(doc)
    good.write_text(text)
    at = text.index('"nonce": "') + len('"nonce": "')
    bad.write_text(text[:at] + ("1" if text[at] == "0" else "0") + text[at + 1 :])
    return good, bad, genesis_hash(chain.genesis_json)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_sync.sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, base_url: str) -> Iterator[Any]:
    context = browser.new_context()
    elsewhere: list[str] = []

    def same_origin_only(route: Any) -> None:
        if route.request.url.startswith(base_url + "/"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    context.route("**/*", same_origin_only)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert elsewhere == [], f"requests to other origins: {elsewhere}"
    assert errors == [], errors


def test_docs_render_offline(page: Any, base_url: str) -> None:
    page.goto(f"{base_url}/docs")
    page.wait_for_selector(".swagger-ui .info .title")
    assert "Comity" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector(".opblock")
    assert page.locator(".opblock").count() > 20


def test_verify_page_checks_a_bundle_offline(
    page: Any, base_url: str, bundle: tuple[Path, Path, str]
) -> None:
    good, bad, pinned = bundle
    page.goto(f"{base_url}/")
    page.wait_for_selector("body[data-ready='true']")
    assert page.get_attribute("html", "lang") == "en"
    assert page.get_attribute("html", "dir") == "ltr"
    page.set_input_files("#bundle-file", str(good))
    page.fill("#genesis-hash", pinned)
    page.click("#verify-form button[type=submit]")
    page.wait_for_selector("#summary.pass")
    assert page.locator("#checks li.fail").count() == 0
    assert page.locator("#checks li.pass").count() >= 8
    assert "OK: every signature" in page.inner_text("#report")
    if shots := os.environ.get("COMITY_SCREENSHOTS"):  # artefacts for docs/CONSOLE.md
        page.screenshot(path=str(Path(shots) / "verify-ok.png"), full_page=True)
    page.set_input_files("#bundle-file", str(bad))
    page.click("#verify-form button[type=submit]")
    page.wait_for_selector("#summary.fail")
    assert page.inner_text("#checks li.fail code") == "bad_record_signature"
    if shots := os.environ.get("COMITY_SCREENSHOTS"):
        page.screenshot(path=str(Path(shots) / "verify-refused.png"), full_page=True)
    page.select_option("#language", "fr")
    page.wait_for_selector("html[lang='fr'][dir='ltr']", state="attached")
    assert page.inner_text("h1") == "Vérifier un dossier de preuve"


def _i18n(lang: str) -> dict[str, str]:
    path = Path(__file__).parents[2] / f"api/console/static/i18n/{lang}.json"
    table: dict[str, str] = json.loads(path.read_text())
    return table


def test_verify_page_reads_right_to_left_in_arabic(
    page: Any, base_url: str, bundle: tuple[Path, Path, str]
) -> None:
    good, bad, pinned = bundle
    ar = _i18n("ar")
    page.goto(f"{base_url}/")
    page.wait_for_selector("body[data-ready='true']")
    page.select_option("#language", "ar")
    page.wait_for_selector("html[lang='ar'][dir='rtl']", state="attached")
    page.set_input_files("#bundle-file", str(good))
    page.fill("#genesis-hash", pinned)
    page.click("#verify-form button[type=submit]")
    page.wait_for_selector("#summary.pass")
    assert page.inner_text("#summary") == ar["verify.ok"]
    assert page.locator("#checks li.fail").count() == 0
    # the layout follows the direction: the checks' list starts on the right
    assert page.evaluate("getComputedStyle(document.querySelector('#checks')).direction") == "rtl"
    if shots := os.environ.get("COMITY_SCREENSHOTS"):  # artefacts for docs/CONSOLE.md
        page.screenshot(path=str(Path(shots) / "verify-ok-rtl.png"), full_page=True)
    page.set_input_files("#bundle-file", str(bad))
    page.click("#verify-form button[type=submit]")
    page.wait_for_selector("#summary.fail")
    assert page.inner_text("#summary") == ar["verify.failed"]
    assert page.inner_text("#checks li.fail code") == "bad_record_signature"
    assert ar["reason.bad_record_signature"] in page.inner_text("#checks li.fail")
    if shots := os.environ.get("COMITY_SCREENSHOTS"):
        page.screenshot(path=str(Path(shots) / "verify-refused-rtl.png"), full_page=True)


#: Run before the page's scripts: WebCrypto refuses Ed25519, as a browser without it does.
NO_WEBCRYPTO_ED25519 = """
const importKey = crypto.subtle.importKey.bind(crypto.subtle);
crypto.subtle.importKey = (format, data, algorithm, ...rest) => {
  const name = typeof algorithm === "string" ? algorithm : algorithm && algorithm.name;
  if (name === "Ed25519") {
    return Promise.reject(new DOMException("Unrecognized algorithm name", "NotSupportedError"));
  }
  return importKey(format, data, algorithm, ...rest);
};
"""
VENDOR = Path(__file__).parents[2] / "api/console/static/vendor/noble-ed25519.js"


@pytest.mark.skipif(not VENDOR.exists(), reason="scripts/console-vendor has not been run")
def test_verify_page_without_webcrypto_ed25519_verifies_through_the_fallback(
    page: Any, base_url: str, bundle: tuple[Path, Path, str]
) -> None:
    good, bad, pinned = bundle
    page.add_init_script(NO_WEBCRYPTO_ED25519)
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url) if "/vendor/" in r.url else None)
    page.goto(f"{base_url}/")
    page.wait_for_selector("body[data-ready='true']")
    page.set_input_files("#bundle-file", str(good))
    page.fill("#genesis-hash", pinned)
    page.click("#verify-form button[type=submit]")
    page.wait_for_selector("#summary.pass")
    assert page.locator("#checks li.fail").count() == 0
    assert fetched == [f"{base_url}/console/vendor/noble-ed25519.js"]
    page.set_input_files("#bundle-file", str(bad))
    page.click("#verify-form button[type=submit]")
    page.wait_for_selector("#summary.fail")
    assert page.inner_text("#checks li.fail code") == "bad_record_signature"


@pytest.mark.parametrize("lang", ["en", "fr", "es", "zh", "ar"])
def test_verify_page_without_webcrypto_ed25519_or_the_fallback_says_so(
    page: Any, base_url: str, bundle: tuple[Path, Path, str], lang: str
) -> None:
    good, _, pinned = bundle
    page.add_init_script(NO_WEBCRYPTO_ED25519)
    page.route("**/console/vendor/**", lambda route: route.fulfill(status=404, body="not found"))
    page.goto(f"{base_url}/")
    page.wait_for_selector("body[data-ready='true']")
    page.select_option("#language", lang)
    page.wait_for_selector(f"html[lang='{lang}']", state="attached")
    page.set_input_files("#bundle-file", str(good))
    page.fill("#genesis-hash", pinned)
    page.click("#verify-form button[type=submit]")
    page.wait_for_selector("#summary.fail")
    failed = page.locator("#checks li.fail")
    assert failed.count() == 1
    assert page.inner_text("#checks li.fail code") == "ed25519_unavailable"
    assert _i18n(lang)["reason.ed25519_unavailable"] in failed.inner_text()
    assert page.inner_text("#report") == ""


@pytest.fixture(scope="module")
def case_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A case bundle, the same with a false reason, and the genesis file (as served)."""
    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API runs a loop in this thread
        doc, ids, genesis = pool.submit(asyncio.run, console_case.case_chain()).result(60)
    folder = tmp_path_factory.mktemp("case")
    good, bad, genesis_file = (folder / n for n in ("case.json", "false.json", "genesis.json"))
    good.write_text(json.dumps(doc))
    row = next(r for r in doc["case"]["records"] if r["id"] == ids["preservation"])
    row["reasons"].append({"reason": "custody_event", "sha256": "00" * 32})
    bad.write_text(json.dumps(doc))
    genesis_file.write_text(json.dumps(genesis))
    return good, bad, genesis_file


def test_verify_page_checks_a_case_bundles_claims(
    page: Any, base_url: str, case_files: tuple[Path, Path, Path]
) -> None:
    good, bad, genesis_file = case_files
    en = json.loads((Path(__file__).parents[2] / "api/console/static/i18n/en.json").read_text())
    ar = json.loads((Path(__file__).parents[2] / "api/console/static/i18n/ar.json").read_text())
    page.goto(f"{base_url}/")
    page.wait_for_selector("body[data-ready='true']")
    page.set_input_files("#bundle-file", str(good))
    page.set_input_files("#genesis-file", str(genesis_file))
    page.click("#verify-form button[type=submit]")
    page.wait_for_selector("#summary.pass")
    assert page.locator("#checks li.fail").count() == 0
    passed = page.inner_text("#checks")
    for check in ("case_section", "case_order", "case_refs", "case_reasons"):
        assert en[f"check.{check}"] in passed, check
    page.select_option("#language", "ar")
    page.wait_for_selector("html[lang='ar'][dir='rtl']", state="attached")
    page.set_input_files("#bundle-file", str(bad))
    page.click("#verify-form button[type=submit]")
    page.wait_for_selector("#summary.fail")
    assert page.inner_text("#checks li.fail code") == "bad_case_reason"
    assert ar["reason.bad_case_reason"] in page.inner_text("#checks li.fail")
