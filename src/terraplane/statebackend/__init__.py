"""Terraform's http state backend: versioned, locked, encrypted state.

Every accepted write becomes an immutable, encrypted version; the `states` row is the head
(lineage, serial, lock). All checks run inside one write transaction holding the head row
(`SELECT ... FOR UPDATE` on PostgreSQL, the single writer lock on SQLite), and the lock itself is
a conditional `UPDATE ... WHERE lock_id IS NULL`, so concurrent clients cannot interleave.
"""
