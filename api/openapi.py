"""The OpenAPI document as configured: built from the routes and the node's config.

Why not FastAPI's document as it comes: three things in it would not be true.

* Security. Read routes carry the ``ReadAccess`` marker (api/deps.py).
  ``include`` puts in its place what this node applies, so with ``open_read``
  a read route has no dependency on a token and the document declares no
  security and no 401 for it; on a closed node it declares bearer auth and 401.
  Sealed and operator routes declare their token always.
* Validation errors. FastAPI documents a 422 ``HTTPValidationError`` for every
  route with parameters; api/errors.py answers those with 400 and the error
  body. ``document`` says so instead.
* Bodies read raw. The write routes parse their body with the canonical-JSON
  reader, so FastAPI sees no body model; their schemas (``Envelope``,
  ``BatchRequest``, sized by this node's limits) are added to the components
  their ``$ref`` names.

Every status a route can answer otherwise comes from its own ``responses=``.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from fastapi import APIRouter, FastAPI, params
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.routing import Route

from api.deps import ReadAccess, read_access
from api.schemas import ErrorBody, request_schemas

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}


def configured(router: APIRouter, open_read: bool) -> APIRouter:
    """``router`` with ``ReadAccess`` replaced by this read mode's dependencies.

    A closed node also documents the 401 its read routes then answer."""
    access = read_access(open_read)
    out = APIRouter()
    for route in router.routes:
        if isinstance(route, APIRoute) and _is_read(route.dependencies):
            route = copy.copy(route)
            route.dependencies = _swap(route.dependencies, access)
            if not open_read:
                route.responses = {**route.responses, 401: {"model": ErrorBody}}
        out.routes.append(route)
    return out


def _is_read(dependencies: list[params.Depends]) -> bool:
    return any(d.dependency is ReadAccess.dependency for d in dependencies)


def _swap(dependencies: list[params.Depends], access: list[params.Depends]) -> list[params.Depends]:
    swapped: list[params.Depends] = []
    for dependency in dependencies:
        swapped += access if dependency.dependency is ReadAccess.dependency else [dependency]
    return swapped


def route_table(
    app: FastAPI, routers: list[APIRouter]
) -> list[tuple[re.Pattern[str], bool, set[str]]]:
    """(path regex, static?, methods) of every route of ``app``, for the 405's ``Allow``."""
    table = []
    for route in [*app.routes, *(r for router in routers for r in router.routes)]:
        if isinstance(route, Route | APIRoute) and route.methods:
            table.append((route.path_regex, "{" not in route.path, set(route.methods)))
    return table


def install(app: FastAPI, chain_id: str, max_batch_records: int) -> None:
    """Serve ``document`` (built once, on first request) as ``/openapi.json``, with
    the body schemas of this node's chain and limits."""
    cache: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not cache:
            cache.update(document(app, request_schemas(chain_id, max_batch_records)))
        return cache

    setattr(app, "openapi", openapi)  # noqa: B010 - FastAPI's documented override


def document(app: FastAPI, bodies: dict[str, Any]) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(bodies)
    for operation in _operations(schema):
        _validation_is_400(operation)
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    return schema


def _operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        operation
        for path in schema.get("paths", {}).values()
        for method, operation in path.items()
        if method in {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    ]


def _validation_is_400(operation: dict[str, Any]) -> None:
    """Replace FastAPI's 422 ``HTTPValidationError`` by the 400 the handler answers."""
    responses: dict[str, Any] = operation.setdefault("responses", {})
    auto = responses.get("422", {}).get("content", {}).get("application/json", {})
    if auto.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
        del responses["422"]
    if operation.get("parameters") or operation.get("requestBody"):
        responses.setdefault("400", _error_response("Bad Request"))
