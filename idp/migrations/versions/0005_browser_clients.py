"""per-client PKCE and CORS policy, client secret rotation; codes without a PKCE challenge

Revision ID: 0005_browser_clients
Revises: 0004
Create Date: 2026-12-03 16:45:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0005_browser_clients"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_secret_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("previous_secret_expires_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("pkce_required", sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column("cors", sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table("authorization_codes", schema=None) as batch_op:
        batch_op.alter_column("code_challenge", existing_type=sa.String(length=128), nullable=True)
        batch_op.alter_column("code_challenge_method", existing_type=sa.String(length=10), nullable=True)


def downgrade():
    op.execute("DELETE FROM authorization_codes WHERE code_challenge IS NULL")  # short-lived codes: none to keep
    with op.batch_alter_table("authorization_codes", schema=None) as batch_op:
        batch_op.alter_column("code_challenge_method", existing_type=sa.String(length=10), nullable=False)
        batch_op.alter_column("code_challenge", existing_type=sa.String(length=128), nullable=False)
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("cors")
        batch_op.drop_column("pkce_required")
        batch_op.drop_column("previous_secret_expires_at")
        batch_op.drop_column("previous_secret_hash")
