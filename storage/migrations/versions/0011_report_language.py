"""report language: the language a report was made in (issue 16)

Revision ID: 0011
Revises: 0010
`report.language` holds the catalog locale the person reported in ("en", "pl", "ro", "ur"). A language code
says nothing about anyone on its own and is counted by `reportbot stats`, so it is kept in clear. Reports made
before this revision were all in English.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "language",
                sqlmodel.sql.sqltypes.AutoString(length=16),
                nullable=False,
                server_default="en",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.drop_column("language")
