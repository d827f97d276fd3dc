"""The OpenAPI document describes exactly the client routes the app registers."""

from __future__ import annotations

from aiohttp import web

from node.http.openapi import build_openapi

from .conftest import Node

# The explorer's HTML pages and files are for people, not part of the client API.
EXPLORER_PREFIXES = ("/explorer/",)
EXPLORER_PATHS = {"/"}


def registered_routes(app: web.Application) -> set[tuple[str, str]]:
    """Return (method, path) of every client-API route (HEAD twins of GETs left out)."""
    routes = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if path in EXPLORER_PATHS or path.startswith(EXPLORER_PREFIXES):
            continue
        if route.method in ("HEAD", "*"):
            continue
        routes.add((route.method.lower(), path))
    return routes


def documented_routes() -> set[tuple[str, str]]:
    """Return (method, path) of every operation in the OpenAPI document."""
    return {
        (method, path)
        for path, operations in build_openapi()["paths"].items()
        for method in operations
    }


async def test_every_client_route_is_documented_and_nothing_else(node: Node) -> None:
    registered = registered_routes(node.client.app)
    documented = documented_routes()
    assert registered - documented == set(), "routes missing from node/openapi.py"
    assert documented - registered == set(), "documented routes that do not exist"


async def test_the_document_is_served_and_its_references_resolve(node: Node) -> None:
    document = await node.get_ok("/openapi.json")
    assert document["openapi"].startswith("3.")
    schemas = document["components"]["schemas"]
    text = repr(document)
    for name in {part.split("'")[0] for part in text.split("#/components/schemas/")[1:]}:
        assert name in schemas, name


async def test_every_operation_names_its_responses(node: Node) -> None:
    for path, operations in build_openapi()["paths"].items():
        for method, operation in operations.items():
            assert operation["responses"], f"{method} {path}"
            assert operation["summary"], f"{method} {path}"
