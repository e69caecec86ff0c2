"""Alembic environment: the engine comes from engine.schema.alembic_config()."""
from alembic import context

from engine import models  # noqa: F401 - registers every table on Base.metadata
from engine.db import Base

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
