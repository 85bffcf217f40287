"""Request bodies: read with a size limit, parsed as JSON whatever the Content-Type says
(`curl -d` sends form encoding), validated into a model with a message naming each field."""

from __future__ import annotations

from typing import TypeVar

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
