"""The state backend's hot-path SQL, built once with bind parameters.

Building a Core statement and compiling it costs more CPU than the database round trip it
makes; these are constructed at import and reused, so SQLAlchemy's compiled cache always hits
and every request only binds values.
"""

from __future__ import annotations

from sqlalchemy import String, bindparam, select, text, update

from terraplane.store.tables import state_versions, states
from terraplane.store.types import UTCDateTime

READ_CURRENT = (
    select(state_versions.c.version, state_versions.c.key_id, state_versions.c.ciphertext)
    .select_from(
        states.join(
            state_versions,
            (state_versions.c.state_name == states.c.name)
            & (state_versions.c.version == states.c.current_version),
        )
    )
    .where(states.c.name == bindparam("name"), states.c.serial.is_not(None))
)


# Create the head row or touch it: either way the row is locked until commit. Written as text
# because SQLAlchemy cannot cache a compiled ON CONFLICT DO UPDATE; the syntax is the same on
# PostgreSQL and SQLite.
HEAD_UPSERT = (
    text(
        "INSERT INTO states (name, created_at, updated_at) VALUES (:name, :now, :now) "  # noqa: S608
        "ON CONFLICT (name) DO UPDATE SET updated_at = excluded.updated_at "
        "RETURNING " + ", ".join(c.name for c in states.c)
    )
    .bindparams(bindparam("name", type_=String), bindparam("now", type_=UTCDateTime))
    .columns(*states.c)
)

VERSION_COLUMNS = [c for c in state_versions.c if c.name not in ("ciphertext", "id")]

INSERT_VERSION = state_versions.insert().returning(*VERSION_COLUMNS)

ADVANCE_HEAD = (
    update(states)
    .where(states.c.name == bindparam("p_name"))
    .values(
        lineage=bindparam("p_lineage"),
        serial=bindparam("p_serial"),
        sha256=bindparam("p_sha256"),
        current_version=bindparam("p_version"),
        updated_at=bindparam("p_now"),
    )
)
