"""The durable job queue.

A job row is written in the same transaction as the change that causes it, with an optional
idempotency key. Workers claim jobs with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite
has one writer at a time), renew it by heartbeat, and finish a job only while they still hold
its claim token, so a worker that lost its lease cannot overwrite the work of the one that took
over. Jobs with the same `exclusive_key` never run at once: a partial unique index on
`(exclusive_key) WHERE status = 'running'` makes that a database guarantee.
"""
