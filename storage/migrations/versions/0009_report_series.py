"""report series: a report can add to an earlier one (issue 18)

Revision ID: 0009
Revises: 0008
`report.linked_to` holds the reference of the earlier report a new one adds to (`add REFERENCE` in the chat).
A reference says nothing about anyone, so it is kept in clear. `report_link` holds the links staff make
(`reportbot link`, with an encrypted note) and the links of erased reports (references only). (0008 is built at the same time on another
branch: the lead re-chains this revision after it at merge.)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("linked_to", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_report_linked_to"), ["linked_to"], unique=False)
    op.create_table(
        "report_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("other", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("note_enc", sa.Text(), nullable=True),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("report_link", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_report_link_reference"), ["reference"], unique=False)
        batch_op.create_index(batch_op.f("ix_report_link_other"), ["other"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("report_link", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_link_other"))
        batch_op.drop_index(batch_op.f("ix_report_link_reference"))
    op.drop_table("report_link")
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_linked_to"))
        batch_op.drop_column("linked_to")
