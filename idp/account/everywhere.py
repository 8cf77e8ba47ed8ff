"""« Se déconnecter de tous les appareils », and the agents' ``idp users sessions --end``.

Every login session of the person ends (one UPDATE), with the grants of those
sessions and every other grant of the person (refresh tokens stop working), and
each relying party that took part in an ended session and registered a
back-channel logout URI is told (:mod:`idp.oidc.backchannel`), after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update

from .. import audit, sessions
from ..extensions import db
from ..models import Grant, utcnow
from ..oidc import backchannel


@dataclass(frozen=True)
class Ended:
    sessions: int
    grants: int
    announcement: backchannel.Announcement


def end_all(user_id: int, by: str) -> Ended:
    """End the person's sessions and grants (not committed); ``by``: person or cli (the audit row's)."""
    sids = sessions.end_sessions(user_id)
    announcement = backchannel.sessions_ended(sids)
    grants = db.session.execute(update(Grant).where(Grant.user_id == user_id, Grant.revoked_at.is_(None))
                                .values(revoked_at=utcnow())).rowcount
    audit.record("sessions_ended", user_id=user_id, detail={"by": by, "sessions": len(sids), "grants": grants})
    return Ended(len(sids), grants, announcement)
