"""claims parameter kept with the grant; signed UserInfo per client

Revision ID: 0008_claims
Revises: 0007_signed_client_auth
Create Date: 2026-12-03 16:45:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008_claims'
down_revision = '0007_signed_client_auth'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claims', sa.JSON(), nullable=True))
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('userinfo_signed_response_alg', sa.String(length=10), nullable=True))


def downgrade():
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('userinfo_signed_response_alg')
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.drop_column('claims')
