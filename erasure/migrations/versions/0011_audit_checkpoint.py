"""audit_checkpoint: the newest event found intact, so `status` verifies only what came after

Revision ID: 0011
Revises: 0010

At millions of events `erasure status` re-verified the whole chain on every
run. It now checks the events after this checkpoint (and that the checkpoint
event still has its hash); `erasure audit verify` still checks everything.
Empty at first: the first verification of either kind sets it.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# As in 0001: naive UTC on disk, microseconds kept on MariaDB (erasure.models.UTCDateTime).
TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'audit_checkpoint',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.Column('verified_at', TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint('id'),
        mysql_charset='utf8mb4', mysql_collate='utf8mb4_bin',
    )


def downgrade() -> None:
    op.drop_table('audit_checkpoint')
