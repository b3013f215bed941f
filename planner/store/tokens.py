"""API tokens in the database: only each token's SHA-256 is stored, with its name and scopes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from planner.store.tables import API_TOKENS


@dataclass(frozen=True)
class StoredToken:
    name: str
    token_hash: str
    #: Sorted scope names.
    scopes: tuple[str, ...]
    created_at: datetime


def _stored(name: str, token_hash: str, scopes: str, created_at: datetime) -> StoredToken:
    return StoredToken(name, token_hash, tuple(scopes.split(",")), created_at)


def token_by_digest(session: Session, digest: str) -> StoredToken | None:
    """The token whose SHA-256 is ``digest`` (an index look-up), or None."""
    c = API_TOKENS.c
    row = session.execute(
        select(c.name, c.token_hash, c.scopes, c.created_at).where(c.token_hash == digest)
    ).first()
    return None if row is None else _stored(*row)


def any_token(session: Session) -> bool:
    """Whether at least one token is stored."""
    return session.scalar(select(API_TOKENS.c.id).limit(1)) is not None


def name_taken(session: Session, name: str) -> bool:
    return session.scalar(select(API_TOKENS.c.id).where(API_TOKENS.c.name == name)) is not None


def add_token(session: Session, name: str, digest: str, scopes: frozenset[str], now: datetime) -> None:
    """Store a token; the unique name and digest make a racing second one fail its transaction."""
    session.execute(
        insert(API_TOKENS).values(
            name=name, token_hash=digest, scopes=",".join(sorted(scopes)), created_at=now
        )
    )


def all_tokens(session: Session) -> list[StoredToken]:
    """Every token, by name."""
    c = API_TOKENS.c
    rows = session.execute(select(c.name, c.token_hash, c.scopes, c.created_at).order_by(c.name))
    return [_stored(*row) for row in rows]


def delete_token(session: Session, name: str) -> str | None:
    """Delete the token named ``name``: its digest, or None when there was none."""
    c = API_TOKENS.c
    return session.scalar(delete(API_TOKENS).where(c.name == name).returning(c.token_hash))
