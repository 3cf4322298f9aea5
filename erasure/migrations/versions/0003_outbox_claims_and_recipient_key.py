"""outbox: delivery claims (claimed_by, claimed_until) and the normalised recipient_key; audit_lock

Revision ID: 0003
Revises: 0002

Claims stop two deliverers (a cron `poll` and an officer's `outbox retry`)
sending the same reply; recipient_key lets the per-recipient cap count
DPO@acme and dpo@acme as one address. Existing rows get their key here.
audit_lock holds the one row every audit writer locks first (models.AuditLock).
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    from erasure.delivery import recipient_key

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recipient_key', sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('claimed_until', TIMESTAMP, nullable=True))
        batch_op.create_index(batch_op.f('ix_outbox_recipient_key'), ['recipient_key'], unique=False)

    # Like every state table since 0002: utf8mb4, binary collation, whatever the database default.
    op.create_table('audit_lock', sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
                    sa.PrimaryKeyConstraint('id'), mysql_charset='utf8mb4', mysql_collate='utf8mb4_bin')
    op.bulk_insert(sa.table('audit_lock', sa.column('id', sa.Integer)), [{'id': 1}])

    outbox = sa.table('outbox', sa.column('id', sa.Integer), sa.column('recipient', sa.String),
                      sa.column('recipient_key', sa.String))
    conn = op.get_bind()
    rows = conn.execute(sa.select(outbox.c.id, outbox.c.recipient)).all()
    for row in rows:
        conn.execute(outbox.update().where(outbox.c.id == row.id).values(recipient_key=recipient_key(row.recipient)))


def downgrade() -> None:
    op.drop_table('audit_lock')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_recipient_key'))
        batch_op.drop_column('claimed_until')
        batch_op.drop_column('claimed_by')
        batch_op.drop_column('recipient_key')
