"""docs/api-reference.md is what tools/api_reference.py renders from node/http/openapi.py."""

from __future__ import annotations

import difflib
import html
import importlib.util
import re
from pathlib import Path
from typing import Any

import markdown
import pytest

from node.http.openapi import build_openapi

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "api-reference.md"


def load_tool() -> Any:
    """Import tools/api_reference.py (docs tooling, not an installed package)."""
    spec = importlib.util.spec_from_file_location(
        "api_reference", ROOT / "tools" / "api_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TOOL = load_tool()
COMMAND: str = TOOL.COMMAND
render_markdown = TOOL.render_markdown


def to_html(text: str) -> str:
    """Render Markdown the way MkDocs does by default (toc and tables)."""
    return markdown.markdown(text, extensions=["toc", "tables", "fenced_code"])


def test_the_committed_api_reference_is_what_the_openapi_document_renders() -> None:
    rendered = render_markdown(build_openapi())
    committed = PAGE.read_bytes()
    if committed != rendered.encode("utf-8"):
        diff = difflib.unified_diff(
            committed.decode("utf-8", "replace").splitlines(),
            rendered.splitlines(),
            "docs/api-reference.md (committed)",
            "docs/api-reference.md (rendered)",
            lineterm="",
        )
        pytest.fail(
            "docs/api-reference.md is out of date with node/http/openapi.py; regenerate it with\n"
            f"    {COMMAND}\n" + "\n".join(list(diff)[:60]),
            pytrace=False,
        )


def test_rendering_is_deterministic() -> None:
    assert render_markdown(build_openapi()) == render_markdown(build_openapi())


def test_every_operation_and_schema_is_on_the_page_and_every_link_lands() -> None:
    document = build_openapi()
    text = render_markdown(document)
    html = to_html(text)
    ids = re.findall(r' id="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "two headings share an anchor"
    for target in re.findall(r'href="#([^"]+)"', html):
        assert target in ids, f"the link to #{target} lands nowhere"
    for path, operations in document["paths"].items():
        for method in operations:
            assert f"\n## {method.upper()} {path}\n" in text
    for name in document["components"]["schemas"]:
        assert f"\n### {name}\n" in text


def hostile_document() -> dict[str, Any]:
    """A small document whose texts hold table pipes, HTML and clashing headings."""
    pattern = {"type": "string", "pattern": "^(a|b)<c>$"}
    return {
        "openapi": "3.0.3",
        "info": {"title": "T", "version": "1", "description": "See <script>x</script>."},
        "paths": {
            "/things/{id}": {
                "get": {
                    "summary": "One | two <b>",
                    "parameters": [
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "schema": pattern,
                            "description": "Either `a|b` or <i>c</i> | d.",
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "A | thing.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["inner"],
                                            "properties": {
                                                "inner": {
                                                    "type": "object",
                                                    "properties": {"x": pattern},
                                                },
                                                "ref": {"$ref": "#/components/schemas/Status"},
                                                "kind": {"$ref": "#/components/schemas/GET things"},
                                            },
                                        },
                                    }
                                }
                            },
                        }
                    },
                }
            },
            # Its heading slugs to `get-things`, as does the schema named below.
            "/things": {"get": {"summary": "All.", "responses": {"204": {"description": "-"}}}},
        },
        "components": {
            "schemas": {
                "GET things": {"type": "string", "enum": ["a|b"]},
                "Status": {"type": "object", "properties": {"s": {"type": "string"}}},
            }
        },
    }


def test_pipes_and_html_in_cells_are_escaped_and_clashing_anchors_still_land() -> None:
    text = render_markdown(hostile_document())
    page = to_html(text)
    assert "<script>" not in page and "<b>" not in page and "<i>" not in page
    header_cells = {
        len(re.findall("<th>", head)) for head in re.findall("<thead>.*?</thead>", page, re.DOTALL)
    }
    for body in re.findall(r"<tbody>(.*?)</tbody>", page, re.DOTALL):
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.DOTALL):
            assert row.count("<td>") in header_cells, row
    shown = html.unescape(page)
    assert "<code>^(a|b)<c>$</code>" in shown  # the pattern, whole, in one cell
    assert "Either <code>a|b</code> or <i>c</i> | d." in shown
    ids = re.findall(r' id="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    assert {"get-things", "get-things_1"} <= set(ids)
    for target in re.findall(r'href="#([^"]+)"', page):
        assert target in ids, f"the link to #{target} lands nowhere"
    assert '<a href="#get-things_1">GET things</a>' in page
    assert "`[].inner.x`" in text and "`[].ref`" in text
