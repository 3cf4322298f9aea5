"""legal_holds, and requests.held_from: nothing a legal hold covers is erased

Revision ID: 0009
Revises: 0008

A legal hold covers every request of a tenant, or those naming one viewer id
(kept only as its HMAC and key version, like subjects). While it is active a
request it covers waits in awaiting_approval; held_from remembers where the
hold stopped it (received or erasing), so that removing the hold sends it back
there. Like every state table since 0002: utf8mb4, binary collation on MariaDB.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('legal_holds',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('tenant', sa.String(length=100), nullable=False),
                    sa.Column('viewer_hmac', sa.String(length=64), nullable=True),
                    sa.Column('key_version', sa.Integer(), nullable=True),
                    sa.Column('reason', sa.Text(), nullable=False),
                    sa.Column('actor', sa.String(length=100), nullable=False),
                    sa.Column('created_at', TIMESTAMP, nullable=False),
                    sa.Column('released_at', TIMESTAMP, nullable=True),
                    sa.Column('released_by', sa.String(length=100), nullable=True),
                    sa.Column('release_reason', sa.Text(), nullable=True),
                    sa.PrimaryKeyConstraint('id'),
                    mysql_charset='utf8mb4', mysql_collate='utf8mb4_bin')
    with op.batch_alter_table('legal_holds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_legal_holds_tenant'), ['tenant'], unique=False)
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('held_from', sa.String(length=24), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_column('held_from')
    with op.batch_alter_table('legal_holds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_legal_holds_tenant'))
    op.drop_table('legal_holds')
