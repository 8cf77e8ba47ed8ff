"""signed client authentication: registered auth method, client keys, used assertions

Revision ID: 0007_signed_client_auth
Revises: 0006_backchannel_logout
Create Date: 2026-12-03 16:45:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007_signed_client_auth'
down_revision = '0006_backchannel_logout'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token_endpoint_auth_method', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('token_endpoint_auth_signing_alg', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('jwks', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('jwks_uri', sa.String(length=2048), nullable=True))
        batch_op.add_column(sa.Column('client_secret_encrypted', sa.LargeBinary(), nullable=True))

    op.create_table('used_client_assertions',
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('jti', sa.String(length=255), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('client_id', 'jti')
    )
    with op.batch_alter_table('used_client_assertions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_used_client_assertions_expires_at'), ['expires_at'], unique=False)


def downgrade():
    with op.batch_alter_table('used_client_assertions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_used_client_assertions_expires_at'))
    op.drop_table('used_client_assertions')

    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('client_secret_encrypted')
        batch_op.drop_column('jwks_uri')
        batch_op.drop_column('jwks')
        batch_op.drop_column('token_endpoint_auth_signing_alg')
        batch_op.drop_column('token_endpoint_auth_method')
