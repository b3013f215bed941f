"""Dashboard sessions in the database: opened at sign-in, checked and touched by each request, ended
by logout or by revoking their token, and forgotten a day after they ended or expired.

A session is live while it has not ended, ``expires_at`` is ahead and it was used within the idle
timeout. Only SHA-256 digests are stored: of the cookie's session id and of the API token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.orm import Session

from planner.store.tables import DASHBOARD_SESSIONS

#: ``last_seen_at`` is written at most this often per session: the idle timeout counts in minutes,
#: and a page that loads ten resources writes once.
TOUCH_EVERY = timedelta(minutes=1)
#: Ended and expired sessions are kept this long (who was signed in when), then deleted.
KEPT_AFTER_END = timedelta(days=1)


@dataclass(frozen=True)
class StoredSession:
    id: int
    token_hash: str
    principal: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime


def open_session(
    session: Session, session_hash: str, token_hash: str, principal: str, now: datetime, expires_at: datetime
) -> None:
    session.execute(
        insert(DASHBOARD_SESSIONS).values(
            session_hash=session_hash,
            token_hash=token_hash,
            principal=principal,
            created_at=now,
            last_seen_at=now,
            expires_at=expires_at,
        )
    )


def live_session(session: Session, session_hash: str, now: datetime, idle: timedelta) -> StoredSession | None:
    """The session, when it has not ended, expired or been idle for ``idle``; else None."""
    c = DASHBOARD_SESSIONS.c
    row = session.execute(
        select(c.id, c.token_hash, c.principal, c.created_at, c.last_seen_at, c.expires_at).where(
            c.session_hash == session_hash,
            c.ended_at.is_(None),
            c.expires_at > now,
            c.last_seen_at > now - idle,
        )
    ).first()
    return None if row is None else StoredSession(*row)


def touch(session: Session, found: StoredSession, now: datetime) -> None:
    """Record a use of the session (at most every :data:`TOUCH_EVERY`; never moving backwards)."""
    if now - found.last_seen_at < TOUCH_EVERY:
        return
    c = DASHBOARD_SESSIONS.c
    session.execute(
        update(DASHBOARD_SESSIONS)
        .where(c.id == found.id, c.ended_at.is_(None), c.last_seen_at < now)
        .values(last_seen_at=now)
    )


def end_session(session: Session, session_hash: str, now: datetime, reason: str) -> bool:
    """End one session (logout); False when it had ended already or never existed."""
    c = DASHBOARD_SESSIONS.c
    result = session.execute(
        update(DASHBOARD_SESSIONS)
        .where(c.session_hash == session_hash, c.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def end_token_sessions(session: Session, token_hash: str, now: datetime, reason: str) -> int:
    """End every session of the token whose SHA-256 is ``token_hash`` not ended yet (expired ones too:
    the host revoking may not share the servers' clock); how many."""
    c = DASHBOARD_SESSIONS.c
    result = session.execute(
        update(DASHBOARD_SESSIONS)
        .where(c.token_hash == token_hash, c.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def forget_old_sessions(session: Session, now: datetime) -> int:
    """Delete sessions that ended or expired more than :data:`KEPT_AFTER_END` ago."""
    c = DASHBOARD_SESSIONS.c
    before = now - KEPT_AFTER_END
    result = session.execute(
        delete(DASHBOARD_SESSIONS).where(or_(c.expires_at < before, c.ended_at < before))
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
