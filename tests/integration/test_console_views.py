"""The inbox and the desk in Debian's Chromium, on the 4-node in-process cluster (issue 21).

TH's and CN's API apps are served by uvicorn on loopback inside the cluster's
own event loop (one background thread), and Chromium may reach those origins
only. TH's node is closed (``open_read = false``), so without a token the page
shows neither the inbox nor the desk and says why; with TH's authority token
(entered once, kept in the tab's sessionStorage, sent as ``Authorization`` on
every API call and never in a URL) its inbox lists CN's preservation request
on TH's territory, a second CN act filed while the page is open appears live
(SSE read with fetch, the header included), and opening a notice shows the act's
legal state. CN's desk lists CN's request with its phase and the deadline it
runs, with its status in words. Switching to Arabic sets ``dir="rtl"``.
``COMITY_SCREENSHOTS=DIR`` saves the inbox and the desk in ltr and rtl.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from api.app import create_app
from ledger.audit.case import pin_of, verify_case_bundle
from ledger.audit.chain import genesis_hash
from node.tokens import create_token
from tests.cluster import Cluster
from tests.integration.test_evidence_flow import CASE, H1, _build_case

CHROMIUM = Path("/usr/bin/chromium")
playwright_sync = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
TIMEOUT_MS = 20_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Served:
    """The cluster running in its own loop, TH's and CN's apps on loopback."""

    def __init__(self, root: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.cluster = Cluster(4, data_root=root)
        th = self.cluster.nodes["TH"]
        th.config = th.config.model_copy(update={"open_read": False})
        self.urls: dict[str, str] = {}
        self.servers: list[uvicorn.Server] = []
        self.run(self._start())

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self) -> None:
        await self.cluster.start()
        for state in ("TH", "CN"):
            port = _free_port()
            config = uvicorn.Config(
                create_app(self.cluster.nodes[state]),
                host="127.0.0.1",
                port=port,
                log_level="warning",
            )
            server = uvicorn.Server(config)
            self.servers.append(server)
            asyncio.get_running_loop().create_task(server.serve())
            self.urls[state] = f"http://127.0.0.1:{port}"
        while not all(s.started for s in self.servers):
            await asyncio.sleep(0.05)

    async def file(self, case_ref: str) -> str:
        """A CN preservation request on TH's territory, committed on every node."""
        envelope = self.cluster.envelope("CN", case_ref=case_ref, territorial_states=["TH"])
        reply = await self.cluster.api["CN"].post("/v1/records", json=envelope)
        assert reply.status_code == 202, reply.text
        record_id: str = reply.json()["id"]
        assert await self.cluster.nodes["CN"].wait_committed(record_id, 15)
        await self.cluster.wait_height(self.cluster.nodes["CN"].app.height)
        return record_id

    async def answer(self, act_id: str, case_ref: str) -> str:
        """TH's authority acknowledges ``act_id`` (a sovereignty_response), committed."""
        envelope = self.cluster.envelope(
            "TH",
            type_="sovereignty_response",
            signer=self.cluster.member("TH").authority,
            territorial_states=["TH"],
            refs=[act_id],
            case_ref=case_ref,
            response="acknowledged",
        )
        reply = await self.cluster.api["TH"].post("/v1/records", json=envelope)
        assert reply.status_code == 202, reply.text
        record_id: str = reply.json()["id"]
        assert await self.cluster.nodes["TH"].wait_committed(record_id, 15)
        await self.cluster.wait_height(self.cluster.nodes["TH"].app.height)
        return record_id

    async def case(self) -> dict[str, str]:
        """test_evidence_flow's case (preservation, acknowledgement, MLA, answer, custody
        TH -> CN of H1), committed on every node."""
        # TH's node is closed: the builder reads its records back with a TH token.
        th = self.cluster.nodes["TH"]
        _, secret = create_token(th.config.data_dir, "auditor", "case builder")
        self.cluster.api["TH"].headers["authorization"] = f"Bearer {secret}"
        try:
            ids = await _build_case(self.cluster)
        finally:
            del self.cluster.api["TH"].headers["authorization"]
        await self.cluster.wait_height(max(n.app.height for n in self.cluster.nodes.values()))
        return ids

    async def _stop(self) -> None:
        for server in self.servers:
            server.should_exit = True
        await asyncio.sleep(0.3)
        await self.cluster.stop()

    def close(self) -> None:
        self.run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = Served(tmp_path_factory.mktemp("cluster"))
    yield served
    served.close()


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
def context(browser: Any, served: Served) -> Iterator[tuple[Any, list[dict[str, str]]]]:
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    allowed = tuple(url + "/" for url in served.urls.values())
    elsewhere: list[str] = []
    api_calls: list[dict[str, str]] = []

    def same_origin_only(route: Any) -> None:
        url = route.request.url
        if url.startswith(allowed):
            if "/v1/" in url:
                api_calls.append({"url": url, **route.request.headers})
            route.continue_()
        else:
            elsewhere.append(url)
            route.abort()

    context.route("**/*", same_origin_only)
    yield context, api_calls
    context.close()
    assert elsewhere == [], f"requests to other origins: {elsewhere}"


def _shot(page: Any, name: str) -> None:
    if shots := os.environ.get("COMITY_SCREENSHOTS"):
        page.screenshot(path=str(Path(shots) / name), full_page=True)


def _open(context: Any, url: str) -> Any:
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    page.goto(url)
    page.wait_for_selector("body[data-ready='true']")
    return page


def test_th_inbox_shows_cn_acts_live_with_a_token(
    served: Served, context: tuple[Any, list[dict[str, str]]]
) -> None:
    ctx, calls = context
    first = served.run(served.file("CASE-CONSOLE-1"))
    _, secret = create_token(
        served.cluster.nodes["TH"].config.data_dir, "authority", "TH desk", state="TH"
    )
    page = _open(ctx, f"{served.urls['TH']}/#inbox")
    # A closed node and no token: no inbox, no desk, and the page says why.
    assert page.is_hidden("#nav-inbox") and page.is_hidden("#nav-desk")
    assert "401" in page.inner_text("#access-message")
    assert page.get_attribute("body", "data-view") == "verify"

    page.fill("#token", secret)
    page.click("#token-use")
    page.wait_for_selector("#nav-inbox", state="visible")
    assert page.evaluate("sessionStorage.getItem('comity.token')") == secret
    assert page.evaluate("localStorage.length") == 0
    assert page.is_visible("#token-forget") and page.input_value("#token") == ""
    page.click("#nav-inbox")
    row = page.wait_for_selector(f"#notices tr[data-id='{first}']")
    assert row is not None
    text = row.inner_text()
    assert "preservation_request" in text and "CN" in text and "Pending" in text
    assert "CASE-CONSOLE-1" in text and "UTC" in text
    link = page.locator(f"#notices tr[data-id='{first}'] a.case-link")
    assert link.get_attribute("href") == "#case/CASE-CONSOLE-1"  # the inbox links the case
    page.wait_for_selector("#inbox-live[data-state='open']")

    second = served.run(served.file("CASE-CONSOLE-2"))  # filed while the page is open
    page.wait_for_selector(f"#notices tr[data-id='{second}']")
    _shot(page, "inbox-ltr.png")

    page.click(f"#notices tr[data-id='{first}'] button")
    page.wait_for_selector("#act dl")
    act = page.inner_text("#act")
    assert first in act and "Requested" in act and "TH: pending" in act

    served.run(
        served.answer(first, "CASE-CONSOLE-1")
    )  # TH acknowledges: the notice turns answered, live
    page.wait_for_selector(f"#notices tr[data-id='{first}'] .badge.ok")
    assert "Answered" in page.inner_text(f"#notices tr[data-id='{first}']")
    assert "Pending" in page.inner_text(f"#notices tr[data-id='{second}']")
    page.click(f"#notices tr[data-id='{first}'] button")
    page.wait_for_selector("#act li >> text=sovereignty_response")
    assert "TH: acknowledged" in page.inner_text("#act")

    api = [c for c in calls if "/v1/" in c["url"]]
    assert any("/v1/sovereignty/notices" in c["url"] for c in api)
    assert any("/v1/events" in c["url"] for c in api)
    authorised = [c for c in api if c.get("authorization") == f"Bearer {secret}"]
    assert {c["url"].split("?")[0].rsplit("/v1/", 1)[1].split("/")[0] for c in authorised} >= {
        "status",
        "sovereignty",
        "events",
        "acts",
    }
    assert all(secret not in c["url"] for c in calls)

    page.select_option("#language", "ar")
    page.wait_for_selector("html[lang='ar'][dir='rtl']", state="attached")
    page.wait_for_selector(f"#notices tr[data-id='{second}']")
    assert page.inner_text("#nav-inbox") == "صندوق الوارد"
    _shot(page, "inbox-rtl.png")

    page.select_option("#language", "en")
    page.click("#token-forget")
    page.wait_for_selector("#nav-inbox", state="hidden")
    assert page.evaluate("sessionStorage.getItem('comity.token')") is None
    assert page.errors == []


def test_cn_desk_shows_its_request_and_deadline(
    served: Served, context: tuple[Any, list[dict[str, str]]]
) -> None:
    ctx, _ = context
    record_id = served.run(served.file("CASE-CONSOLE-3"))
    served.run(served.answer(record_id, "CASE-CONSOLE-3"))  # TH acknowledges it
    page = _open(ctx, f"{served.urls['CN']}/#desk")
    page.wait_for_selector("#view-desk[data-loaded='true']")
    row = page.wait_for_selector(f"#requests tr[data-id='{record_id}']")
    assert row is not None
    assert "preservation_request" in row.inner_text() and "Requested" in row.inner_text()
    assert "TH: acknowledged" in row.inner_text()  # the answer is seen on CN's desk
    clock = page.wait_for_selector("#deadlines tr[class^='deadline-']")
    assert clock is not None
    status = clock.get_attribute("class")
    label = {
        "deadline-running": "Running",
        "deadline-warning": "Due soon",
        "deadline-overdue": "Overdue",
        "deadline-stopped": "Stopped",
    }[status]
    assert label in clock.inner_text()
    assert page.locator("#stats dd").count() == 6
    groups = page.inner_text("#stats-groups")
    assert "TH\tbudapest\tpreservation_request" in groups  # instruments as the API names them
    page.select_option("#filter-case", "CASE-CONSOLE-3")
    assert page.locator("#requests tr[data-id]").count() == 1
    _shot(page, "desk-ltr.png")
    page.select_option("#language", "ar")
    page.wait_for_selector("html[lang='ar'][dir='rtl']", state="attached")
    page.wait_for_selector("#view-desk[data-loaded='true']")
    assert page.evaluate("getComputedStyle(document.querySelector('nav')).direction") == "rtl"
    _shot(page, "desk-rtl.png")
    assert page.errors == []


#: WCAG 2.1 relative luminance and contrast (§1.4.3, "contrast ratio" in its glossary) of
#: every element with its own text in ``root``, against the first opaque background up
#: the tree: the list of those under 4.5:1.
CONTRAST_JS = """(root) => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const ground = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const low = [];
  for (const el of document.querySelector(root).querySelectorAll("*")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.getClientRects().length) continue;
    const a = lum(rgb(getComputedStyle(el).color).slice(0, 3));
    const b = lum(ground(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) low.push(`${el.tagName}.${el.className}: ${ratio.toFixed(2)}`);
  }
  return low;
}"""


def test_case_and_chain_views_verify_what_they_show(
    served: Served, context: tuple[Any, list[dict[str, str]]], tmp_path: Path
) -> None:
    """CN's console: the desk links to the case; the case shows its timeline, TH's
    answer, the custody chain of H1 and ✓ on its blocks; the bundle downloaded with the
    tab's token verifies with the Python auditor, the certificate is a PDF; the chain
    view marks every block ✓, pinned or not, ✗ genesis_mismatch under another pin, and
    its search routes each kind of query to its call, refusing a malformed one unsent."""
    ctx, calls = context
    ids = served.run(served.case())
    cn = served.cluster.nodes["CN"]
    _, secret = create_token(cn.config.data_dir, "investigator", "CN investigator")
    page = _open(ctx, f"{served.urls['CN']}/#desk")
    page.fill("#token", secret)
    page.click("#token-use")
    page.wait_for_selector("#view-desk[data-loaded='true']")
    page.click(f"#requests tr[data-id='{ids['preservation']}'] a.case-link")
    page.wait_for_selector("#view-case[data-loaded='true']")
    assert page.evaluate("location.hash") == f"#case/{CASE}"

    timeline = page.inner_text("#case-timeline")
    for needle in ("preservation_request", "sovereignty_response", "mla_response", "Art 29"):
        assert needle in timeline, needle
    assert "UTC" in timeline and "TH · sovereignty_response · acknowledged" in timeline
    row = page.locator("#case-sovereignty tr[data-state='TH']").first.inner_text()
    assert "preservation_request" in row and "acknowledged" in row
    chain = page.locator(f"#case-custody section[data-sha256='{H1}']")
    steps = chain.locator("ol.chain > li").all_inner_texts()
    assert [s.split("\n")[0] for s in steps[:4]] == [
        "collected",
        "transferred",
        "received",
        "examined",
    ]
    assert "TH → CN · CN forensic lab" in steps[1]
    assert "Hash intact" in chain.inner_text()
    page.wait_for_selector("#view-case[data-marked='true']")
    marks = page.locator("#case-timeline .vmark")
    assert marks.count() >= len(ids)
    assert set(marks.evaluate_all("ms => ms.map(m => m.dataset.verified)")) == {"true"}
    assert "not pinned" in marks.first.inner_text()

    with page.expect_download() as got:
        page.click("#case-bundle")
    bundle = Path(got.value.path()).read_bytes()
    doc = json.loads(bundle)
    genesis = cn.app.genesis.to_json()
    report = verify_case_bundle(doc, pinned_genesis_hash=pin_of(genesis, doc))
    assert report.case_ref == CASE and set(ids.values()) <= set(report.reasons)
    with page.expect_download() as got:
        page.click("#case-certificate")
    assert Path(got.value.path()).read_bytes().startswith(b"%PDF-")
    assert "Saved certificate-" in page.inner_text("#case-download-state")
    downloads = [c for c in calls if "/bundle" in c["url"] or "/certificate" in c["url"]]
    assert len(downloads) == 2
    assert all(c.get("authorization") == f"Bearer {secret}" for c in downloads)
    assert all(secret not in c["url"] for c in calls)
    # Keyboard: the downloads are reached with Tab from the pin form.
    page.focus("#pin-hash")
    for _ in range(6):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "case-bundle":
            break
    assert page.evaluate("document.activeElement.id") == "case-bundle"
    assert page.evaluate(CONTRAST_JS, "#view-case") == []
    _shot(page, "case-ltr.png")
    page.select_option("#language", "ar")
    page.wait_for_selector("html[lang='ar'][dir='rtl']", state="attached")
    page.wait_for_selector("#view-case[data-marked='true']")
    _shot(page, "case-rtl.png")
    page.select_option("#language", "en")

    while cn.app.height <= 20:  # so the chain view has a page to go back to
        served.run(served.file("CASE-CONSOLE-PAGING"))
    page.click("#nav-chain")
    page.wait_for_selector("#view-chain[data-marked='true']")
    blocks = page.locator("#blocks .vmark")
    assert blocks.count() == min(20, cn.app.height)
    assert set(blocks.evaluate_all("ms => ms.map(m => m.dataset.verified)")) == {"true"}
    assert "CN" in page.inner_text("#validators") and "CN" in page.inner_text("#members")
    # Paged back to block 1, 20 at a time, every block marked.
    top = int(page.locator("#blocks tr").first.get_attribute("data-height"))
    while page.is_visible("#blocks-older"):
        shown = page.locator("#blocks tr").count()
        page.click("#blocks-older")
        page.wait_for_function(
            "(n) => document.querySelectorAll('#blocks tr').length > n", arg=shown
        )
        page.wait_for_function(
            "() => [...document.querySelectorAll('#blocks .block-mark')]"
            ".every(c => c.querySelector('.vmark'))"
        )
    heights = page.locator("#blocks tr").evaluate_all("rs => rs.map(r => +r.dataset.height)")
    assert heights == list(range(top, 0, -1))
    assert page.locator("#blocks .vmark[data-verified='true']").count() == top
    pinned = genesis_hash(genesis)
    page.fill("#pin-hash", pinned.upper())
    page.press("#pin-hash", "Enter")
    page.wait_for_selector("#pin-state.pass")
    page.wait_for_selector("#view-chain[data-marked='true']")
    assert ", pinned" in page.locator("#blocks .vmark").first.inner_text()
    assert page.evaluate("sessionStorage.getItem('comity.genesis_pin')") == pinned
    page.fill("#pin-hash", "ab" * 32)
    page.click("#pin-use")
    page.wait_for_selector("#pin-state.fail")
    page.wait_for_selector("#view-chain[data-marked='true']")
    codes = page.locator("#blocks .vmark").evaluate_all("ms => ms.map(m => m.dataset.code)")
    assert set(codes) == {"genesis_mismatch"}
    page.click("#pin-forget")
    page.wait_for_selector("#view-chain[data-marked='true']")

    searches = {
        "record": (ids["ack"], ids["ack"]),
        "case": (CASE, ids["examined"]),
        "evidence": (H1, ids["received"]),
        "signer": (served.cluster.member("TH").authority.public_hex, ids["ack"]),
    }
    for kind, (query, expect) in searches.items():
        page.select_option("#search-kind", kind)
        page.fill("#search-query", query)
        page.press("#search-query", "Enter")
        page.wait_for_selector(f"#search-results tr[data-id='{expect}']")
    assert page.locator("#search-state a.case-link").count() == 0  # the last was a signer
    before = len(calls)
    page.select_option("#search-kind", "evidence")
    page.fill("#search-query", "not-a-hash")
    page.press("#search-query", "Enter")
    page.wait_for_selector("#search-state.fail")
    assert "64 hexadecimal digits" in page.inner_text("#search-state")
    assert not any("not-a-hash" in c["url"] for c in calls[before:])
    assert page.evaluate(CONTRAST_JS, "#view-chain") == []
    _shot(page, "chain-ltr.png")
    page.select_option("#language", "ar")
    page.wait_for_selector("html[lang='ar'][dir='rtl']", state="attached")
    page.wait_for_selector("#view-chain[data-marked='true']")
    _shot(page, "chain-rtl.png")
    assert page.errors == []


def test_the_certificate_route_keeps_the_token_rules(served: Served) -> None:
    """On TH's closed node, the certificate needs a token like the bundle: none, or an
    unknown one, is 401 unauthorized."""
    url = f"{served.urls['TH']}/v1/cases/{CASE}/certificate"
    for headers in ({}, {"authorization": "Bearer cmt_not_a_token"}):
        reply = httpx.get(url, headers=headers, timeout=30)
        assert reply.status_code == 401, reply.text
        assert reply.json()["error"]["code"] == "unauthorized"
