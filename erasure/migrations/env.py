"""Alembic environment: always run with a connection handed in by erasure.state."""

from alembic import context

from erasure.models import Base

target_metadata = Base.metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only via erasure.state.upgrade
    raise RuntimeError("run migrations through `erasure init`, which supplies the connection")

context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
