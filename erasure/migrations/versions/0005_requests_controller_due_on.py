"""requests: controller_due_on, the controller's own legal date (processor role)

Revision ID: 0005
Revises: 0004

A processor owes its answer within its controller's deadline (GDPR Art. 28(3)(e)),
which started when the data subject wrote to the controller. When that day is
known, the controller's date is kept beside due_on so the register and the
status screen can show it and warn before it passes. Nullable: earlier requests,
and requests whose controller receipt is unknown, have none.
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('controller_due_on', sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_column('controller_due_on')
