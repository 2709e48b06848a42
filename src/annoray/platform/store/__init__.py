"""The SQL store: the engine (SQLite or PostgreSQL), the tables, their repositories, the Alembic migrations, and the
home folder with its admin token. Repositories only flush; the caller owns the transaction."""
