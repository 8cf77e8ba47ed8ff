"""back-channel logout: sid of sessions and grants, clients' backchannel_logout_uri

Revision ID: 0006_backchannel_logout
Revises: 0005_browser_clients
Create Date: 2026-12-03 16:45:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006_backchannel_logout'
down_revision = '0005_browser_clients'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('backchannel_logout_uri', sa.String(length=2048), nullable=True))
        batch_op.add_column(sa.Column('backchannel_logout_session_required', sa.Boolean(),
                                      server_default=sa.false(), nullable=False))
    with op.batch_alter_table('browser_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sid', sa.String(length=43), nullable=True))
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sid', sa.String(length=43), nullable=True))
        batch_op.create_index(batch_op.f('ix_grants_sid'), ['sid'], unique=False)


def downgrade():
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grants_sid'))
        batch_op.drop_column('sid')
    with op.batch_alter_table('browser_sessions', schema=None) as batch_op:
        batch_op.drop_column('sid')
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('backchannel_logout_session_required')
        batch_op.drop_column('backchannel_logout_uri')
