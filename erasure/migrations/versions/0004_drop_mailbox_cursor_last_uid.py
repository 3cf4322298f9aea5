"""mailbox_cursor: drop last_uid, which nothing ever wrote or read

Revision ID: 0004
Revises: 0003

Which messages are new is decided by the intake ledger (mailbox_messages, keyed
by folder, UIDVALIDITY and UID), not by a high-water mark, so the column only
suggested a second source of truth.
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('mailbox_cursor', schema=None) as batch_op:
        batch_op.drop_column('last_uid')


def downgrade() -> None:
    with op.batch_alter_table('mailbox_cursor', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_uid', sa.Integer(), nullable=True))
