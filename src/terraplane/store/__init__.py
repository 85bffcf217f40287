"""Storage: SQLAlchemy Core tables, the database handle, migrations and encryption at rest.

One code path serves SQLite (WAL, one writer at a time: write transactions begin IMMEDIATE) and
PostgreSQL. Repository modules flush within the caller's transaction; the use case owns it.
"""
