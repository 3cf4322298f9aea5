"""utf8mb4 state tables on MariaDB/MySQL; the last poll problem per mailbox

Revision ID: 0002
Revises: 0001

Tables made by 0001 took the database's default character set. A database
created as latin1 (an old server default) then could not hold an emoji subject
line, and the failing INSERT stopped every poll. On MariaDB/MySQL every state
table is converted to utf8mb4 with a binary collation, so text is stored as
sent and compared exactly, as on SQLite and PostgreSQL. Other databases are
untouched by that step.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
TABLES = ("audit_events", "mailbox_cursor", "requests", "mailbox_messages", "outbox", "subjects")

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name in ("mysql", "mariadb"):
        # Foreign keys join integer columns only, so converting table by table is safe.
        for table in TABLES:
            op.execute(f"ALTER TABLE {table} CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    with op.batch_alter_table('mailbox_cursor', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_problem', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('last_problem_at', TIMESTAMP, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('mailbox_cursor', schema=None) as batch_op:
        batch_op.drop_column('last_problem_at')
        batch_op.drop_column('last_problem')
