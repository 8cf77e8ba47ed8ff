"""Client assertions already used (RFC 7523 §3 item 7: a ``jti`` is accepted once).

One row per accepted assertion, keyed by the client and the assertion's ``jti``: the
row is written by one ``INSERT … ON CONFLICT DO NOTHING`` before the assertion is
accepted (:mod:`idp.oidc.client_auth`), so that of two requests carrying the same
assertion, on any worker or host, exactly one inserts it and the other is refused.
``expires_at`` is the instant past which the assertion is refused anyway (its ``exp``
plus the allowed clock skew); ``idp purge`` deletes the rows after it.

The client is its ``client_id`` as the assertion names it (``iss`` = ``sub``), with no
foreign key: the table is a replay log, and a client removed meanwhile leaves rows that
expire like any other.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db

#: Longest ``jti`` accepted (the column's width); longer assertions are refused.
JTI_MAX_LENGTH = 255


class UsedAssertion(db.Model):
    __tablename__ = "used_client_assertions"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    jti: Mapped[str] = mapped_column(String(JTI_MAX_LENGTH), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)
