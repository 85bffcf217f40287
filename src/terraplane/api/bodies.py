"""Request bodies: read with a size limit, parsed as JSON whatever the Content-Type says
(`curl -d` sends form encoding), validated into a model with a message naming each field."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from terraplane.domain.errors import PayloadTooLarge, Unprocessable

M = TypeVar("M", bound=BaseModel)


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "body"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)


async def parse_body(request: Request, model: type[M], limit: int) -> M:
    raw = await read_body(request, limit)
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise Unprocessable(f"invalid request body: {describe(exc)}") from exc


def _inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline_refs(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline_refs(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline_refs(v, defs) for v in node]
    return node


def json_body(model: type[BaseModel], multipart: dict[str, Any] | None = None) -> dict[str, Any]:
    """`openapi_extra` documenting a body that the route reads itself with `parse_body` (which
    FastAPI cannot see): the model's JSON schema, self-contained; optionally a multipart form
    (`multipart` is its object schema) accepted as well."""
    schema = model.model_json_schema()
    content: dict[str, Any] = {
        "application/json": {"schema": _inline_refs(schema, schema.get("$defs", {}))}
    }
    if multipart is not None:
        content["multipart/form-data"] = {"schema": multipart}
    return {"requestBody": {"required": True, "content": content}}
