"""initial state schema

Revision ID: 0001
Revises: 
Times are naive UTC on disk (erasure.models.UTCDateTime).
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

# Microsecond precision everywhere: audit hashes cover the stored timestamps.
TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    
    op.create_table('audit_events',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('at', TIMESTAMP, nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('event', sa.String(length=40), nullable=False),
    sa.Column('request_ref', sa.String(length=32), nullable=True),
    sa.Column('tenant', sa.String(length=100), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_events_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_events_request_ref'), ['request_ref'], unique=False)

    op.create_table('mailbox_cursor',
    sa.Column('source', sa.String(length=255), nullable=False),
    sa.Column('uidvalidity', sa.Integer(), nullable=True),
    sa.Column('last_uid', sa.Integer(), nullable=True),
    sa.Column('last_poll_at', TIMESTAMP, nullable=True),
    sa.Column('last_success_at', TIMESTAMP, nullable=True),
    sa.PrimaryKeyConstraint('source')
    )
    op.create_table('requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=32), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('planned', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('regulation', sa.String(length=8), nullable=False),
    sa.Column('tenant', sa.String(length=100), nullable=True),
    sa.Column('requester', sa.String(length=320), nullable=True),
    sa.Column('reply_allowed', sa.Boolean(), nullable=False),
    sa.Column('subject_line', sa.String(length=255), nullable=False),
    sa.Column('message_id', sa.String(length=255), nullable=True),
    sa.Column('thread_refs', sa.Text(), nullable=True),
    sa.Column('reason_code', sa.String(length=64), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('received_at', TIMESTAMP, nullable=False),
    sa.Column('acknowledge_by', sa.Date(), nullable=True),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('extended_to', sa.Date(), nullable=True),
    sa.Column('match_count', sa.BigInteger(), nullable=True),
    sa.Column('rows_erased', sa.BigInteger(), nullable=True),
    sa.Column('response', sa.String(length=32), nullable=True),
    sa.Column('approved_by', sa.String(length=100), nullable=True),
    sa.Column('closed_at', TIMESTAMP, nullable=True),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.Column('updated_at', TIMESTAMP, nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('reference')
    )
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_requests_due_on'), ['due_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_requests_received_at'), ['received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_requests_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_requests_tenant'), ['tenant'], unique=False)

    op.create_table('mailbox_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=255), nullable=False),
    sa.Column('message_key', sa.String(length=255), nullable=False),
    sa.Column('message_id', sa.String(length=255), nullable=True),
    sa.Column('body_sha256', sa.String(length=64), nullable=True),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=True),
    sa.Column('destination', sa.String(length=16), nullable=False),
    sa.Column('moved', sa.Boolean(), nullable=False),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'message_key', name='uq_mailbox_messages_source_key')
    )
    with op.batch_alter_table('mailbox_messages', schema=None) as batch_op:
        batch_op.create_index('ix_mailbox_messages_body', ['body_sha256'], unique=False)

    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('message_id', sa.String(length=255), nullable=False),
    sa.Column('recipient', sa.String(length=320), nullable=False),
    sa.Column('raw', sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb"), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', TIMESTAMP, nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('receipt', sa.Text(), nullable=True),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.Column('sent_at', TIMESTAMP, nullable=True),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_id')
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_recipient'), ['recipient'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_request_id'), ['request_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_status'), ['status'], unique=False)

    op.create_table('subjects',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('viewer_id', sa.Text(), nullable=True),
    sa.Column('viewer_hmac', sa.String(length=64), nullable=False),
    sa.Column('key_version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('subjects', schema=None) as batch_op:
        batch_op.create_index('ix_subjects_hmac', ['viewer_hmac'], unique=False)
        batch_op.create_index(batch_op.f('ix_subjects_request_id'), ['request_id'], unique=False)



def downgrade() -> None:
    
    with op.batch_alter_table('subjects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subjects_request_id'))
        batch_op.drop_index('ix_subjects_hmac')

    op.drop_table('subjects')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_status'))
        batch_op.drop_index(batch_op.f('ix_outbox_request_id'))
        batch_op.drop_index(batch_op.f('ix_outbox_recipient'))

    op.drop_table('outbox')
    with op.batch_alter_table('mailbox_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_mailbox_messages_body')

    op.drop_table('mailbox_messages')
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_requests_tenant'))
        batch_op.drop_index(batch_op.f('ix_requests_status'))
        batch_op.drop_index(batch_op.f('ix_requests_received_at'))
        batch_op.drop_index(batch_op.f('ix_requests_due_on'))

    op.drop_table('requests')
    op.drop_table('mailbox_cursor')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_events_request_ref'))
        batch_op.drop_index(batch_op.f('ix_audit_events_at'))

    op.drop_table('audit_events')
