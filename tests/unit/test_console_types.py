"""The console's TypeScript check, and its API client in step with the API's /openapi.json.

``tsc --noEmit`` (api/console/tsconfig.json: checkJs, strict) must be clean over
the console's JSDoc-typed modules; the committed ``api/console/types/openapi.d.ts``
must be what tests/console_types.py generates from ``create_app(...)``'s
current document (so a route that changes changes the client's types, or this
fails); tsc must refuse a path, a query parameter or a reply field the API does
not have; and every ``/v1/...`` path a module calls, typed or not, must be in the
document with that method. Runs ``npm ci`` in api/console when its node_modules is
missing (scripts/test runs it first). Skipped only when ``node`` is missing, and
under CI a skip fails the run (tests/tiers.py).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests import console_types

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "api" / "console"
JS = CONSOLE / "static" / "js"
TSC = CONSOLE / "node_modules" / "typescript" / "bin" / "tsc"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node (20+) is not installed")


#: A path string in a module: a quoted or template literal that starts with /v1/.
PATH_LITERAL = re.compile(r"""(?P<call>\w+)?\(?\s*(?P<q>["'`])(?P<path>/v1/[^"'`?\s]*)(?P=q)""")
#: The client function each call goes through, and the method it sends.
CALL_METHODS = {"get": "get", "stream": "get", "post": "post", "put": "put", "del": "delete"}


@pytest.fixture(scope="module")
def npm_tree() -> Path:
    """api/console/node_modules, installed from package-lock.json when missing."""
    if not TSC.exists():
        npm = shutil.which("npm")
        assert npm is not None, "npm is missing: it comes with node; run `npm ci` in api/console"
        run = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=CONSOLE,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, f"npm ci in {CONSOLE} failed:\n{run.stdout}{run.stderr}"
    return CONSOLE / "node_modules"


def _tsc(project: Path) -> subprocess.CompletedProcess[str]:
    assert NODE is not None
    return subprocess.run(
        [NODE, str(TSC), "--noEmit", "--pretty", "false", "-p", str(project)],
        cwd=CONSOLE,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return console_types.openapi_document()


def test_tsc_is_clean_over_the_console_modules(npm_tree: Path) -> None:
    run = _tsc(CONSOLE / "tsconfig.json")
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]


def test_the_tsconfig_is_strict_and_checks_every_module() -> None:
    text = (CONSOLE / "tsconfig.json").read_text()
    options = ('"checkJs": true', '"strict": true', '"noImplicitAny": true', '"noEmit": true')
    for option in (*options, '"noUncheckedIndexedAccess": true', '"target": "ES2022"'):
        assert option in text, option
    listed = set(re.findall(r'"static/js/(\w+\.js)"', text))
    modules = {p.name for p in JS.glob("*.js")}
    assert {"app.js", "views.js", "noble.js"} <= modules, modules
    assert modules == listed, (modules - listed, listed - modules)


def test_the_committed_api_types_are_the_apis(npm_tree: Path, document: dict[str, Any]) -> None:
    committed = console_types.OUT.read_text()
    assert console_types.generate(document) == committed, (
        f"{console_types.OUT.relative_to(ROOT)} is not what the API's /openapi.json gives: "
        f"refresh it with `{console_types.REFRESH}` and commit it"
    )


def test_every_object_query_parameter_is_form_exploded(document: dict[str, Any]) -> None:
    """types/api.d.ts merges an object parameter's members into the query: that is its wire
    form only for style form, explode true (OpenAPI 3.1 §4.8.12.4)."""
    seen = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for param in operation.get("parameters", []) if isinstance(operation, dict) else []:
                schema = param.get("schema", {})
                if param["in"] == "query" and (
                    schema.get("type") == "object" or "properties" in schema
                ):
                    seen.append((method, path, param["name"]))
                    assert param.get("style", "form") == "form", (path, param["name"])
                    assert param.get("explode", True) is True, (path, param["name"])
    assert ("get", "/v1/search", "key") in seen


PROBE = """\
import { get, stream } from "{api}";

export async function probe(/** @type {string} */ id) {
  const page = await get("/v1/search", { actor_state: "CN", limit: 100, cursor: null });
  const rows = page.results.map((row) => row.actor_state);
  const act = await get(`/v1/acts/${encodeURIComponent(id)}`);
  const stop = stream("/v1/events", { territorial_state: "TH", foreign: true }, () => {});
  await get("/v1/nowhere"); // BAD path
  await get("/v1/search", { actor_state: "CN", no_such_parameter: 1 }); // BAD parameter
  return [rows, act, stop, page.no_such_field]; // BAD field
}
"""


def test_tsc_refuses_a_path_parameter_or_field_the_api_does_not_have(
    npm_tree: Path, tmp_path: Path
) -> None:
    probe = tmp_path / "probe.js"
    probe.write_text(PROBE.replace("{api}", (JS / "api.js").as_posix()))
    config = tmp_path / "tsconfig.json"
    files = [str(probe), str(CONSOLE / "types" / "openapi.d.ts")]
    config.write_text(json.dumps({"extends": str(CONSOLE / "tsconfig.json"), "files": files}))
    run = _tsc(config)
    errors = [line for line in run.stdout.splitlines() if "error TS" in line]
    bad = [n for n, line in enumerate(PROBE.splitlines(), 1) if "// BAD" in line]
    where = sorted({int(m[1]) for e in errors if (m := re.search(r"probe\.js\((\d+),", e))})
    assert where == bad, run.stdout[-4000:]
    assert all("probe.js" in e for e in errors), run.stdout[-4000:]  # nothing else fails
    assert run.returncode != 0


def _module_calls() -> list[tuple[str, str, str]]:
    """(module, method, OpenAPI path template) for every /v1/ path string in the modules."""
    calls = []
    for module in sorted(JS.glob("*.js")):
        for match in PATH_LITERAL.finditer(module.read_text()):
            method = CALL_METHODS.get(match["call"] or "", "any")
            calls.append((module.name, method, match["path"]))
    return calls


def _matches(path: str, template: str) -> bool:
    """A module's path (with ${...} parts) against a template (with {param} parts)."""
    pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
    concrete = re.sub(r"\$\{[^}]*\}", "x", path)
    return re.fullmatch(pattern, concrete) is not None


def test_every_v1_path_the_modules_call_is_in_the_document(document: dict[str, Any]) -> None:
    calls = _module_calls()
    assert {"/v1/status", "/v1/search", "/v1/events"} <= {p for _, _, p in calls}
    missing = []
    for module, method, path in calls:
        methods = [
            set(item) for template, item in document["paths"].items() if _matches(path, template)
        ]
        if not any(method in found or method == "any" for found in methods):
            missing.append(f"{module}: {method.upper()} {path}")
    assert not missing, f"paths the API does not serve with that method: {missing}"


def test_the_path_check_can_fail(document: dict[str, Any]) -> None:
    assert _matches("/v1/acts/${encodeURIComponent(id)}", "/v1/acts/{record_id}")
    assert not _matches("/v1/acts/${id}/nope", "/v1/acts/{record_id}")
    assert not any(_matches("/v1/nowhere", t) for t in document["paths"])
    post_only = [t for t, item in document["paths"].items() if set(item) == {"post"}]
    assert post_only and "get" not in document["paths"][post_only[0]]
