"""client branding: logo_uri and client_uri on clients; the answer to a login form kept on its flow

Revision ID: 0010_client_branding
Revises: 0009_audit_trail
Create Date: 2026-12-03 19:30:00

The login pages name the partner site from its registration (``logo_uri``,
``client_uri``, RFC 7591), and every login form answers with a 303 to a GET that
shows the outcome: that outcome (``login_flows.notice``) is kept server-side on
the flow, never in the URL.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010_client_branding'
down_revision = '0009_audit_trail'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('logo_uri', sa.String(length=2048), nullable=True))
        batch_op.add_column(sa.Column('client_uri', sa.String(length=2048), nullable=True))
    with op.batch_alter_table('login_flows', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notice', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('login_flows', schema=None) as batch_op:
        batch_op.drop_column('notice')
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('client_uri')
        batch_op.drop_column('logo_uri')
