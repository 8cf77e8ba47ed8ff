"""security space: the provider's own login flows (no relying party), fresh second factor

Revision ID: 0011_security_space
Revises: 0009_audit_trail
Create Date: 2026-12-03 19:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011_security_space'
down_revision = '0010_client_branding'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('login_flows', schema=None) as batch_op:
        batch_op.alter_column('client_id', existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column('purpose', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('return_to', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('second_factor_required', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))


def downgrade():
    # The security space's logins have no relying party: they cannot outlive the column's constraint.
    op.execute("DELETE FROM login_flows WHERE client_id IS NULL")
    with op.batch_alter_table('login_flows', schema=None) as batch_op:
        batch_op.drop_column('second_factor_required')
        batch_op.drop_column('return_to')
        batch_op.drop_column('purpose')
        batch_op.alter_column('client_id', existing_type=sa.Integer(), nullable=False)
