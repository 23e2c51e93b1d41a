"""``/docs`` and ``/redoc`` load nothing from another origin (issue 21: a closed network).

FastAPI's default pages pull Swagger UI and ReDoc from a public CDN and render
blank offline. Every ``src``/``href`` of the served HTML must be a same-origin
path, and each must serve the script or stylesheet itself from the installed
package. Built from a real ``create_app`` over an unstarted node; no sockets.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from api.app import create_app
from tests.cluster import Cluster

URL_ATTR = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
#: Swagger UI's bundle calls SwaggerUIBundle({url: ...}); ReDoc's page uses spec-url.
SPEC_URL = re.compile(r"""(?:url|spec-url)\s*[:=]\s*['"]([^'"]+)['"]""")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    node = next(iter(Cluster(1).nodes.values()))
    transport = httpx.ASGITransport(app=create_app(node))
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        yield client


def _same_origin_urls(html: str) -> list[str]:
    urls = URL_ATTR.findall(html) + SPEC_URL.findall(html)
    assert urls, "the page references no asset at all"
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), f"{url} is not same-origin"
    return urls


@pytest.mark.parametrize(
    ("page", "kinds"),
    [
        ("/docs", {"javascript", "css", "png", "json"}),
        ("/redoc", {"javascript", "png", "json"}),
    ],
)
async def test_docs_pages_reference_only_same_origin_assets_that_serve(
    client: httpx.AsyncClient, page: str, kinds: set[str]
) -> None:
    reply = await client.get(page)
    assert reply.status_code == 200
    assert "cdn" not in reply.text.lower() and "googleapis" not in reply.text
    served = set()
    for url in _same_origin_urls(reply.text):
        asset = await client.get(url)
        assert asset.status_code == 200, url
        kind = asset.headers["content-type"].split(";")[0].split("/")[1]
        assert len(asset.content) > 1000 or kind == "png", url
        served.add(kind)
    assert served == kinds


async def test_swagger_ui_is_version_5_which_renders_openapi_3_1(client: httpx.AsyncClient) -> None:
    assert (await client.get("/openapi.json")).json()["openapi"].startswith("3.1")
    bundle = (await client.get("/docs-assets/swagger-ui-bundle.js")).text
    assert "SwaggerUIBundle" in bundle
    assert re.search(r'"5\.\d+\.\d+"', bundle), "Swagger UI 4 cannot render OpenAPI 3.1"


async def test_an_unknown_asset_is_a_json_404(client: httpx.AsyncClient) -> None:
    reply = await client.get("/docs-assets/../../etc/passwd")
    assert reply.status_code == 404
    reply = await client.get("/docs-assets/nope.js")
    assert reply.status_code == 404
    assert reply.json()["error"]["code"] == "not_found"
