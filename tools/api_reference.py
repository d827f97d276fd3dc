"""Render the client API's OpenAPI document as a Markdown reference page.

Docs tooling, outside the installed packages. Two ways to run it:

    python tools/api_reference.py > docs/api-reference.md

or as the MkDocs hook named in mkdocs.yml: `mkdocs build` and `mkdocs serve` rewrite
docs/api-reference.md first whenever it differs from what the node's document renders.

`render_markdown` is pure: the same document always gives the same text.
tests/unit/test_api_reference.py checks that the committed docs/api-reference.md is what
it renders for node/http/openapi.py's document today.

The page is written for MkDocs (Python-Markdown with the `toc` and `tables` extensions)
and reads the same on GitHub: headings are plain text whose anchors are computed here the
way `toc` computes them, and table cells escape `|` and `<`.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from node.http.openapi import build_openapi

COMMAND = "python tools/api_reference.py > docs/api-reference.md"
PAGE = Path(__file__).resolve().parents[1] / "docs" / "api-reference.md"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
SCHEMA_PREFIX = "#/components/schemas/"
FIELD_HEADER = ["Field", "Type", "Required", "Description"]
PARAMETER_HEADER = ["Name", "In", "Type", "Required", "Description"]
RESPONSE_HEADER = ["Status", "Description", "Body"]
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)


# Anchors ---------------------------------------------------------------------------------


def slugify(text: str) -> str:
    """Return the anchor Python-Markdown's `toc` extension gives a heading (its default)."""
    value = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    value = re.sub(r"[^\w\s-]", "", value).strip().lower()
    return re.sub(r"[-\s]+", "-", value)


class Anchors:
    """The anchors of a page's headings, made unique the way `toc` does (`_1`, `_2`...)."""

    def __init__(self) -> None:
        self.taken: set[str] = set()

    def add(self, heading: str) -> str:
        """Register a heading (in page order) and return its anchor."""
        anchor = slugify(heading)
        while anchor in self.taken or not anchor:
            counted = re.match(r"^(.*)_([0-9]+)$", anchor)
            base, count = (counted.group(1), int(counted.group(2))) if counted else (anchor, 0)
            anchor = f"{base}_{count + 1}"
        self.taken.add(anchor)
        return anchor


# Inline Markdown -------------------------------------------------------------------------


def code(text: str) -> str:
    """Return `text` as inline code that is safe anywhere, table cells included.

    A code span cannot hold a `|` inside a table portably (GitHub splits the cell, MkDocs
    would print a backslash), so such text becomes <code> with HTML entities instead.
    """
    if "|" in text or "\n" in text:
        escaped = "".join(f"&#{ord(char)};" if char in "|\\`*_[]{}<>&" else char for char in text)
        return f"<code>{escaped}</code>"
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    padding = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{padding}{text}{padding}{fence}"


def prose(text: str, *, in_table: bool = False) -> str:
    """Return a description's Markdown with `<` (and in a table `|`, newlines) escaped.

    Code spans are kept (re-fenced by `code` when they hold a `|`).
    """
    parts: list[str] = []
    position = 0
    for span in CODE_SPAN.finditer(text):
        parts.append(_escape_text(text[position : span.start()], in_table))
        parts.append(code(span.group(2)) if in_table else span.group(0))
        position = span.end()
    parts.append(_escape_text(text[position:], in_table))
    result = "".join(parts)
    return " ".join(result.split()) if in_table else result.strip()


def _escape_text(text: str, in_table: bool) -> str:
    text = text.replace("<", "&lt;")
    return text.replace("|", "\\|") if in_table else text


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Return the lines of a Markdown table (cells already escaped)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


# Schemas ---------------------------------------------------------------------------------


class Renderer:
    """Renders one document; knows the anchors of its component schemas."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})
        self.schema_anchors: dict[str, str] = {}

    def resolve(self, item: Any) -> Any:
        """Follow a local `$ref` (of a parameter, body or response) to what it names."""
        seen: set[str] = set()
        while isinstance(item, dict) and "$ref" in item and item["$ref"] not in seen:
            seen.add(item["$ref"])
            target: Any = self.document
            for part in item["$ref"].removeprefix("#/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            item = target
        return item

    def schema_link(self, reference: str) -> str:
        name = reference.removeprefix(SCHEMA_PREFIX)
        anchor = self.schema_anchors.get(name)
        return f"[{name}](#{anchor})" if anchor else code(name)

    def type_text(self, schema: Any) -> str:
        """Return a schema's type and constraints in one line of table-safe Markdown."""
        if not isinstance(schema, dict):
            return "any value" if schema is True or schema is None else "no value"
        if "$ref" in schema:
            text = self.schema_link(schema["$ref"])
        else:
            text = self._plain_type_text(schema)
        for combinator, word in (("allOf", " and "), ("anyOf", " or "), ("oneOf", " or ")):
            if combinator in schema:
                text = word.join(self.type_text(part) for part in schema[combinator])
        if schema.get("nullable"):
            text += " or null"
        return text

    def _plain_type_text(self, schema: dict[str, Any]) -> str:
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = " or ".join(kind)
        if kind == "array":
            items = schema.get("items", {})
            if self._has_fields(items):
                text = "array of objects"
            else:
                text = f"array of {self.type_text(items)}"
            bounds = self._bounds(schema, "minItems", "maxItems", "items")
            return f"{text} ({bounds})" if bounds else text
        if kind == "object" or (kind is None and "properties" in schema):
            extra = schema.get("additionalProperties")
            if isinstance(extra, dict) and not schema.get("properties"):
                values = "objects" if self._has_fields(extra) else self.type_text(extra)
                return f"object mapping names to {values}"
            return "object"
        text = str(kind) if kind else "any value"
        if "format" in schema:
            text += f" ({schema['format']})"
        if "enum" in schema:
            text += ", one of " + ", ".join(code(_json_text(value)) for value in schema["enum"])
        if "pattern" in schema:
            text += " matching " + code(schema["pattern"])
        bounds = self._bounds(schema, "minimum", "maximum", "")
        bounds = ", ".join(
            part
            for part in (bounds, self._bounds(schema, "minLength", "maxLength", "chars"))
            if part
        )
        return f"{text} ({bounds})" if bounds else text

    @staticmethod
    def _bounds(schema: dict[str, Any], low: str, high: str, unit: str) -> str:
        suffix = f" {unit}" if unit else ""
        parts = []
        if low in schema:
            parts.append(f"at least {schema[low]}{suffix}")
        if high in schema:
            parts.append(f"at most {schema[high]}{suffix}")
        return ", ".join(parts)

    @staticmethod
    def _has_fields(schema: Any) -> bool:
        return isinstance(schema, dict) and "$ref" not in schema and bool(schema.get("properties"))

    def field_rows(self, schema: dict[str, Any], prefix: str = "") -> Iterator[list[str]]:
        """Yield a table row per field, nested objects' and array items' fields included."""
        required = set(schema.get("required", []))
        for name, field in schema.get("properties", {}).items():
            path = prefix + name
            yield [
                code(path),
                self.type_text(field),
                "yes" if name in required else "no",
                self.description(field),
            ]
            yield from self.nested_rows(field, path)

    def nested_rows(self, schema: Any, path: str) -> Iterator[list[str]]:
        """Yield the rows of the fields inside an inline object, array or map."""
        if not isinstance(schema, dict) or "$ref" in schema:
            return
        if self._has_fields(schema):
            yield from self.field_rows(schema, f"{path}." if path else "")
        elif schema.get("type") == "array":
            yield from self.nested_rows(schema.get("items"), f"{path}[]")
        elif isinstance(schema.get("additionalProperties"), dict):
            yield from self.nested_rows(schema["additionalProperties"], f"{path}.*")

    def description(self, schema: Any) -> str:
        if not isinstance(schema, dict):
            return ""
        parts = []
        if schema.get("description"):
            parts.append(prose(schema["description"], in_table=True))
        if "default" in schema:
            parts.append("Default: " + code(_json_text(schema["default"])) + ".")
        if "example" in schema:
            parts.append("Example: " + code(_json_text(schema["example"])) + ".")
        if schema.get("deprecated"):
            parts.append("Deprecated.")
        return " ".join(parts)

    def schema_block(self, schema: Any, what: str) -> list[str]:
        """Return the fields table of an inline schema that has fields, else nothing."""
        rows = list(self.nested_rows(schema, ""))
        if not rows:
            return []
        return [f"{what}:", "", *table(FIELD_HEADER, rows), ""]

    # Operations --------------------------------------------------------------------------

    def content_items(self, content: dict[str, Any], what: str) -> tuple[list[str], list[str]]:
        """Return one line per media type naming its schema, and the tables of inline ones."""
        items: list[str] = []
        blocks: list[str] = []
        for media_type, media in content.items():
            schema = (media or {}).get("schema")
            label = code(media_type)
            if schema is None:
                items.append(label)
                continue
            text = self.type_text(schema)
            block = self.schema_block(schema, f"Fields of the {what} ({label})")
            if block:
                text += ", fields below"
                blocks += block
            items.append(f"{label}: {text}")
        return items, blocks

    def operation(self, path: str, operation: dict[str, Any]) -> list[str]:
        """Return the section of one operation (its heading excluded)."""
        lines = []
        if operation.get("deprecated"):
            lines += ["**Deprecated.**", ""]
        for key in ("summary", "description"):
            if operation.get(key):
                lines += [prose(operation[key]), ""]
        lines += self.parameters(
            [*self.document["paths"][path].get("parameters", []), *operation.get("parameters", [])]
        )
        if "requestBody" in operation:
            lines += self.request_body(self.resolve(operation["requestBody"]))
        return lines + self.responses(operation.get("responses", {}))

    def parameters(self, parameters: list[Any]) -> list[str]:
        rows = []
        for parameter in map(self.resolve, parameters):
            schema = parameter.get("schema")
            described = (self.description(parameter), self.description(schema))
            rows.append(
                [
                    code(parameter["name"]),
                    parameter["in"],
                    self.type_text(schema),
                    "yes" if parameter.get("required") else "no",
                    " ".join(part for part in described if part),
                ]
            )
        if not rows:
            return []
        return ["**Parameters**", "", *table(PARAMETER_HEADER, rows), ""]

    def request_body(self, body: dict[str, Any]) -> list[str]:
        required = "required" if body.get("required") else "optional"
        lines = [f"**Request body** ({required})", ""]
        if body.get("description"):
            lines += [prose(body["description"]), ""]
        items, blocks = self.content_items(body.get("content", {}), "request body")
        return lines + [f"- {item}" for item in items] + ["", *blocks]

    def responses(self, responses: dict[str, Any]) -> list[str]:
        rows = []
        blocks: list[str] = []
        for status, response in responses.items():
            response = self.resolve(response)
            items, more = self.content_items(response.get("content", {}), f"{status} response")
            description = prose(response.get("description", ""), in_table=True)
            rows.append([code(str(status)), description, "<br>".join(items)])
            blocks += more
        return ["**Responses**", "", *table(RESPONSE_HEADER, rows), "", *blocks]

    def render(self) -> str:
        anchors = Anchors()
        info = self.document.get("info", {})
        title = "API reference"
        anchors.add(title)
        operations = [
            (path, method, item[method])
            for path, item in self.document.get("paths", {}).items()
            for method in item
            if method in METHODS
        ]
        # Anchors are registered in page order: operations, then the schemas section.
        operation_anchors = [
            anchors.add(f"{method.upper()} {path}") for path, method, _ in operations
        ]
        schemas_heading = "Schemas"
        anchors.add(schemas_heading)
        for name in self.schemas:
            self.schema_anchors[name] = anchors.add(name)

        lines = [f"# {title}", ""]
        lines += [
            "Generated from the node's OpenAPI document (`/openapi.json`, built by "
            f"`node/http/openapi.py`) with `{COMMAND}`; do not edit it by hand. The guide to "
            "the same API, with examples, is [Client API](api.md).",
            "",
        ]
        heading = info.get("title", "API")
        if info.get("version"):
            heading += f", version {info['version']}"
        lines += [f"**{prose(heading)}** (OpenAPI {self.document.get('openapi', '3')})", ""]
        if info.get("description"):
            lines += [prose(info["description"]), ""]

        rows = [
            [
                method.upper(),
                f"[{code(path)}](#{anchor})",
                prose(op.get("summary", ""), in_table=True),
            ]
            for (path, method, op), anchor in zip(operations, operation_anchors, strict=True)
        ]
        lines += [*table(["Method", "Path", "Summary"], rows), ""]

        for path, method, operation in operations:
            lines += [f"## {method.upper()} {path}", ""]
            lines += self.operation(path, operation)

        if self.schemas:
            lines += [f"## {schemas_heading}", ""]
            lines += ["The shared schemas that the operations above refer to.", ""]
            for name, schema in self.schemas.items():
                lines += [f"### {name}", ""]
                if isinstance(schema, dict) and schema.get("description"):
                    lines += [prose(schema["description"]), ""]
                rows = list(self.nested_rows(schema, ""))
                if rows:
                    lines += [*table(FIELD_HEADER, rows), ""]
                else:
                    lines += [f"Type: {self.type_text(schema)}", ""]
        return "\n".join(lines).rstrip("\n") + "\n"


def _json_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_markdown(document: dict[str, Any]) -> str:
    """Return the Markdown reference page of an OpenAPI 3.0 document."""
    return Renderer(document).render()


def main() -> None:
    """Print the reference page of this node's API (see COMMAND)."""
    sys.stdout.buffer.write(render_markdown(build_openapi()).encode("utf-8"))


def on_pre_build(config: Any) -> None:
    """MkDocs hook: rewrite docs/api-reference.md if the API's document changed."""
    rendered = render_markdown(build_openapi()).encode("utf-8")
    if not PAGE.is_file() or PAGE.read_bytes() != rendered:
        PAGE.write_bytes(rendered)


if __name__ == "__main__":
    main()
