"""mailbox_cursor: the last pass's duration and messages fetched

Revision ID: 0008
Revises: 0007

`erasure metrics` and `status --json` give monitoring the last poll's duration
and how many new messages it fetched, per mailbox. Nullable: no pass has
recorded them yet.
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('mailbox_cursor', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_poll_seconds', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('last_poll_fetched', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('mailbox_cursor', schema=None) as batch_op:
        batch_op.drop_column('last_poll_fetched')
        batch_op.drop_column('last_poll_seconds')
