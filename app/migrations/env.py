"""Alembic environment: the engine comes from the caller (``app.db.alembic_config``)."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from app import models, program_models, token_models  # noqa: F401  (registers the tables on the metadata)

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
