"""store_progress: one row per request and view store while it is erased

Revision ID: 0007
Revises: 0006

A request completes only when every configured store ([[stores]]) has been
erased and verified. Stores have no transaction in common, so the progress of
each is kept here: pending or verified, the count taken on the way into
`erasing`, the rows erased per table, attempts and the last error. Requests
that were `erasing` before this revision get their rows from the workflow on
its next run (a request with no row is pending in every store).
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# As in 0001: naive UTC on disk, microseconds kept on MariaDB (erasure.models.UTCDateTime).
TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'store_progress',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('request_id', sa.Integer(), nullable=False),
        sa.Column('store', sa.String(length=32), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('match_count', sa.BigInteger(), nullable=True),
        sa.Column('rows_erased', sa.BigInteger(), nullable=True),
        sa.Column('counts', sa.Text(), nullable=True),
        sa.Column('resumed', sa.Boolean(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('last_attempt_at', TIMESTAMP, nullable=True),
        sa.Column('failing_since', TIMESTAMP, nullable=True),
        sa.Column('verified_at', TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(['request_id'], ['requests.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('request_id', 'store', name='uq_store_progress_request_store'),
        # As every state table since 0002: utf8mb4 with a binary collation on MariaDB/MySQL,
        # whatever the database's default (a latin1 database would otherwise make this table latin1).
        mysql_charset='utf8mb4', mysql_collate='utf8mb4_bin',
    )
    with op.batch_alter_table('store_progress', schema=None) as batch_op:
        batch_op.create_index('ix_store_progress_request_id', ['request_id'], unique=False)
        batch_op.create_index('ix_store_progress_store_state', ['store', 'state'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('store_progress', schema=None) as batch_op:
        batch_op.drop_index('ix_store_progress_store_state')
        batch_op.drop_index('ix_store_progress_request_id')
    op.drop_table('store_progress')
