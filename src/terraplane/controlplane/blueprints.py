"""Blueprints and their immutable versions."""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from terraplane.controlplane import modules
from terraplane.domain.blueprints import Tier, validate_name, validate_tiers, version_sort_key
from terraplane.domain.errors import Conflict, NotFound, Unprocessable
from terraplane.domain.variables import VariableSpec
from terraplane.engine.archives import unpack
from terraplane.store.tables import blueprint_versions, blueprints
from terraplane.store.types import utcnow
from terraplane.store.upsert import insert_returning

VERSION_COLUMNS = [c for c in blueprint_versions.c if c.name != "archive"]


class GitSource(BaseModel):
    url: str = Field(min_length=1, max_length=2048)
    path: str = Field(default=".", max_length=1024)
    ref: str = Field(default="main", min_length=1, max_length=255)


class SourceSpec(BaseModel):
    git: GitSource


class VersionMetadata(BaseModel):
    version: str = Field(min_length=1, max_length=64)
    tiers: dict[str, Tier] = Field(default_factory=dict)
    source: SourceSpec | None = None


def blueprint_json(row: Any, versions: list[str]) -> dict[str, Any]:
    return {
        "name": row.name,
        "description": row.description,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
        "versions": versions,
    }


def version_json(row: Any) -> dict[str, Any]:
    return {
        "blueprint": row.blueprint,
        "version": row.version,
        "source": row.source,
        "archive_sha256": row.archive_sha256,
        "variables": row.variables,
        "tiers": row.tiers,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
    }


async def create_blueprint(
    conn: AsyncConnection, name: str, description: str | None, who: str
) -> dict[str, Any]:
    validate_name("blueprint", name)
    row = await insert_returning(
        conn,
        blueprints,
        {"name": name, "description": description, "created_by": who, "created_at": utcnow()},
    )
    if row is None:
        raise Conflict(f"blueprint {name!r} already exists")
    return blueprint_json(row, [])


async def list_blueprints(conn: AsyncConnection) -> list[dict[str, Any]]:
    rows = (await conn.execute(select(blueprints).order_by(blueprints.c.name))).all()
    versions = await _versions_by_blueprint(conn)
    return [blueprint_json(r, versions.get(r.name, [])) for r in rows]


async def get_blueprint(conn: AsyncConnection, name: str) -> dict[str, Any]:
    row = (await conn.execute(select(blueprints).where(blueprints.c.name == name))).one_or_none()
    if row is None:
        raise NotFound(f"blueprint {name!r} does not exist")
    return blueprint_json(row, (await _versions_by_blueprint(conn, name)).get(name, []))


async def _versions_by_blueprint(
    conn: AsyncConnection, name: str | None = None
) -> dict[str, list[str]]:
    query = select(blueprint_versions.c.blueprint, blueprint_versions.c.version).order_by(
        blueprint_versions.c.blueprint, blueprint_versions.c.sort_key
    )
    if name is not None:
        query = query.where(blueprint_versions.c.blueprint == name)
    out: dict[str, list[str]] = {}
    for blueprint, version in (await conn.execute(query)).all():
        out.setdefault(blueprint, []).append(version)
    return out


async def prepare_version(
    meta: VersionMetadata, archive: bytes | None
) -> tuple[bytes, dict[str, Any], list[VariableSpec]]:
    """Fetch (git) or take (upload) the module, and read its variable schema. No database."""
    version_sort_key(meta.version)
    if archive is None:
        if meta.source is None:
            raise Unprocessable("a version needs an uploaded archive or a git source")
        git = meta.source.git
        module, commit = await asyncio.to_thread(modules.fetch_git, git.url, git.ref, git.path)
        source: dict[str, Any] = {"git": {**git.model_dump(), "commit": commit}}
    else:
        module = archive
        source = {"archive": {"sha256": hashlib.sha256(archive).hexdigest()}}
    schema = await asyncio.to_thread(_schema_of, module)
    validate_tiers(schema, meta.tiers)
    return module, source, schema


def _schema_of(archive: bytes) -> list[VariableSpec]:
    with tempfile.TemporaryDirectory(prefix="terraplane-module-") as tmp:
        target = Path(tmp) / "module"
        unpack(archive, target)
        return modules.read_variables(target)


async def add_version(
    conn: AsyncConnection,
    blueprint: str,
    meta: VersionMetadata,
    archive: bytes,
    source: dict[str, Any],
    schema: list[VariableSpec],
    who: str,
) -> dict[str, Any]:
    await get_blueprint(conn, blueprint)
    values = {
        "blueprint": blueprint,
        "version": meta.version,
        "sort_key": version_sort_key(meta.version),
        "source": source,
        "archive": archive,
        "archive_sha256": hashlib.sha256(archive).hexdigest(),
        "variables": [v.model_dump() for v in schema],
        "tiers": {k: t.model_dump() for k, t in meta.tiers.items()},
        "created_by": who,
        "created_at": utcnow(),
    }
    row = await insert_returning(conn, blueprint_versions, values)
    if row is None:
        raise Conflict(
            f"blueprint {blueprint!r} already has version {meta.version}; versions are immutable"
        )
    return version_json(row)


async def get_version(conn: AsyncConnection, blueprint: str, version: str) -> Any:
    """The version row, without its archive (only workers need that, and they load it
    themselves); `latest` is the highest release (pre-releases only when nothing else)."""
    query = select(*VERSION_COLUMNS).where(blueprint_versions.c.blueprint == blueprint)
    if version == "latest":
        is_release = blueprint_versions.c.sort_key.like("%~")
        query = query.order_by(is_release.desc(), blueprint_versions.c.sort_key.desc()).limit(1)
    else:
        query = query.where(blueprint_versions.c.version == version)
    row = (await conn.execute(query)).one_or_none()
    if row is None:
        raise NotFound(f"blueprint {blueprint!r} has no version {version}")
    return row
