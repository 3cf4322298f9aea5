"""subjects: refusal_code, refusal_reason; requests: refusal_code (refusal codes and partial decisions)

Revision ID: 0006
Revises: 0005

An officer may refuse a request, or only some of the viewer ids it names, on a
stated legal ground (erasure.refusals). The decision is kept per subject, so the
refused ids are left out of counting and erasing while the rest of the request
goes ahead, and the letters and the yearly figures can say on which ground.
A full rejection also keeps its code on the request (a request may name no id).
Nullable: earlier requests and every id not refused have none.
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('subjects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('refusal_code', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('refusal_reason', sa.Text(), nullable=True))
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('refusal_code', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_column('refusal_code')
    with op.batch_alter_table('subjects', schema=None) as batch_op:
        batch_op.drop_column('refusal_reason')
        batch_op.drop_column('refusal_code')
