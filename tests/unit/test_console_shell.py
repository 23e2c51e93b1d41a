"""The console shell at ``/`` (api/console/static): same-origin only, translated, lang/dir set.

Built from a real ``create_app`` over an unstarted node; no sockets. The page's
logic runs under Node in tests/unit/test_console_js.py; here, what the node
serves: ``/`` is the shell, every script, stylesheet and module it loads is a
same-origin path that serves the right type, no shipped file names another
origin, and every string the page or its modules show is in every language's
file (English, French, Spanish, Chinese, Arabic: the same keys and placeholders).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.cli.devnet import hint
from api.console import STATIC
from ledger.acts_lifecycle import LIFECYCLE_PHASES
from ledger.block import genesis_hash
from node.deadlines import STATUSES
from tests.cluster import Cluster

URL_ATTR = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
IMPORT = re.compile(r"""(?:from|import)\s*\(?\s*["'](\./[^"']+)["']""")
LANGUAGES = ("en", "fr", "es", "zh", "ar")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    node = next(iter(Cluster(1).nodes.values()))
    transport = httpx.ASGITransport(app=create_app(node))
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        yield client


def _translations(lang: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((STATIC / "i18n" / f"{lang}.json").read_text())
    return data


async def test_the_shell_is_served_at_root_with_lang_and_dir(client: httpx.AsyncClient) -> None:
    reply = await client.get("/")
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/html")
    assert re.search(r'<html lang="en" dir="ltr">', reply.text)
    assert "default-src 'self'" in reply.text  # the page's CSP refuses other origins
    types = {}
    for url in URL_ATTR.findall(reply.text):
        if url in ("/", "/docs") or url.startswith("#"):
            continue
        assert url.startswith("/console/"), url
        asset = await client.get(url)
        assert asset.status_code == 200, url
        types[url.rsplit(".", 1)[1]] = asset.headers["content-type"].split(";")[0]
    assert types == {"css": "text/css", "js": "text/javascript"}


async def test_every_module_the_page_imports_is_served(client: httpx.AsyncClient) -> None:
    seen, todo = set(), ["/console/js/app.js"]
    while todo:
        url = todo.pop()
        reply = await client.get(url)
        assert reply.status_code == 200, url
        assert reply.headers["content-type"].startswith("text/javascript"), url
        seen.add(url)
        base = url.rsplit("/", 1)[0]
        todo += [
            f"{base}/{m[2:]}" for m in IMPORT.findall(reply.text) if f"{base}/{m[2:]}" not in seen
        ]
    assert {"/console/js/bundle.js", "/console/js/merkle.js", "/console/js/i18n.js"} <= seen
    for lang in LANGUAGES:
        assert (await client.get(f"/console/i18n/{lang}.json")).json() == _translations(lang)


def test_no_shipped_file_names_another_origin() -> None:
    for path in STATIC.rglob("*"):
        if path.is_file() and path.parent.name != "vendor":
            text = path.read_text()
            assert not re.search(r"https?://|//cdn|@import", text), path
    # The npm fallback signer (scripts/console-vendor) cites papers in its comments, but
    # loads nothing: no import, no fetch.
    for path in (STATIC / "vendor").glob("*.js"):
        code = re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S)
        assert not re.search(r"^\s*import\b|\bimport\(|\bfetch\(|XMLHttpRequest", code, re.M), path


def _keys_used() -> set[str]:
    html = (STATIC / "index.html").read_text()
    keys = set(re.findall(r'data-i18n(?:-label|-placeholder)?="([^"]+)"', html))
    for path in (STATIC / "js").glob("*.js"):
        text = path.read_text()
        keys |= set(re.findall(r"""\bt\(\s*["']([\w.]+)["']""", text))
        keys |= {f"check.{c}" for c in re.findall(r'check: "(\w+)"', text)}
        keys |= {f"reason.{c}" for c in re.findall(r'AuditFailure\(\s*"(\w+)"', text)}
        keys |= {f"reason.{c}" for c in re.findall(r'return \[\s*"(\w+)"', text)}
    return keys


def _dynamic_keys() -> set[str]:
    """Keys the views build from the API's values: every phase, deadline status and
    notice status the API can return, and the keys named in lists (not ``t("...")``)."""
    views = (STATIC / "js" / "views.js").read_text() + (STATIC / "js" / "app.js").read_text()
    keys = {f"phase.{p}" for p in LIFECYCLE_PHASES} | {f"deadline.{s}" for s in STATUSES}
    keys |= {f"filter.{f}" for f in ("case", "state", "type", "instrument")}
    keys |= set(re.findall(r'"((?:inbox|access|col|act)\.[a-z_]+)"', views))
    chain = (STATIC / "js" / "chain.js").read_text()
    kinds = re.findall(r"^  (\w+): \{ valid:", chain, re.M)
    assert kinds == ["record", "case", "evidence", "signer"]
    keys |= {f"chain.{prefix}_{kind}" for kind in kinds for prefix in ("search", "bad")}
    case_js = (
        (STATIC / "js" / "case.js").read_text() + chain + (STATIC / "js" / "live.js").read_text()
    )
    keys |= set(re.findall(r'"((?:case|chain|live)\.[a-z_]+)"', case_js))
    keys |= {"live.unavailable", "nav.chain"}
    return keys


def test_every_key_exists_in_every_language_file() -> None:
    en = _translations("en")
    used = _keys_used() | _dynamic_keys()
    assert {"reason.bad_record_signature", "check.certificate", "verify.ok"} <= used
    assert {"phase.pending_mla_decision", "deadline.overdue", "inbox.pending"} <= used
    assert {"access.unauthorized", "access.forbidden", "col.route_to"} <= used
    assert used <= set(en), sorted(used - set(en))
    for lang in LANGUAGES:
        other = _translations(lang)
        assert set(other) == set(en), (lang, sorted(set(other) ^ set(en)))
        for key in en:
            assert other[key].strip(), (lang, key)
            assert set(re.findall(r"\{\w+\}", en[key])) == set(
                re.findall(r"\{\w+\}", other[key])
            ), (lang, key)


def test_the_language_switch_offers_every_file_and_arabic_is_rtl() -> None:
    source = (STATIC / "js" / "i18n.js").read_text()
    offered = dict(re.findall(r'^\s+(\w+): \{ dir: "(ltr|rtl)"', source, re.M))
    assert offered == {"en": "ltr", "fr": "ltr", "es": "ltr", "zh": "ltr", "ar": "rtl"}
    assert {p.stem for p in (STATIC / "i18n").glob("*.json")} == set(offered)
    assert re.search(r'<select id="language">', (STATIC / "index.html").read_text())


def test_the_token_stays_in_the_tab_and_chain_strings_are_never_markup() -> None:
    for path in (STATIC / "js").glob("*.js"):
        text = path.read_text()
        assert not re.search(r"\blocalStorage\s*[.\[]", text), path  # for the open tab only
        assert "document.cookie" not in text, path
        assert not re.search(r"\.(innerHTML|outerHTML|insertAdjacentHTML)\b", text), path
    api = (STATIC / "js" / "api.js").read_text()
    assert "sessionStorage.setItem(TOKEN_KEY" in api
    assert "Authorization = `Bearer ${token}`" in api
    assert "new EventSource" not in api  # it cannot send the header: fetch streaming instead


def test_static_files_ship_as_package_data() -> None:
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"api.console" = ["static/*", "static/**/*"]' in pyproject


def test_the_devnet_hint_names_the_console_url(tmp_path: Path) -> None:
    rows = [{"state": "CN", "api_url": "http://127.0.0.1:7000"}]
    genesis = {"chain_id": "comity-devnet", "members": []}
    (tmp_path / "genesis.json").write_text(json.dumps(genesis))
    text = hint(tmp_path, rows)
    assert "http://127.0.0.1:7000/ is the console" in text
    assert "http://127.0.0.1:7000/docs" in text
    # The Verify page's pin, without a terminal: the file's path and the hash it checks.
    assert f"{tmp_path / 'genesis.json'}, genesis hash {genesis_hash(genesis)}." in text
