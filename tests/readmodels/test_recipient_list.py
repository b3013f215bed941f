"""Finding recipients: id prefix, email and phone (exact, normalised), filters, keyset pages; on both
databases."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from planner.app import App
from planner.commands.importer import import_lines
from planner.commands.recipients import erase, set_preference
from planner.core.recipient_search import RecipientSearch
from planner.errors import InvalidInput
from planner.readmodels.recipients import list_recipients
from planner.settings import Settings
from planner.store.preferences import set_channel_opt_out

NOW = datetime(2026, 3, 7, 15, 0, tzinfo=UTC)
BRIEF = {"kind": "daily_brief", "channel": "email", "at": "08:00", "days": "daily"}
PEOPLE = [
    {"type": "recipient", "id": "ann", "timezone": "Europe/London", "email": "Ann.Lee@Example.com",
     "phone": "+447700900123", "subscriptions": [BRIEF]},
    {"type": "recipient", "id": "ann_b", "timezone": "Europe/Paris", "email": "annb@example.com"},
    {"type": "recipient", "id": "annex", "timezone": "Europe/London", "phone": "+12125550100"},
    {"type": "recipient", "id": "bob", "timezone": "America/New_York", "email": "bob@example.com",
     "phone": "+12125550199",
     "subscriptions": [BRIEF, {"kind": "reminder", "channel": "sms", "at": "09:00", "days": "mon"}]},
    {"type": "recipient", "id": "anna", "timezone": "Asia/Tokyo", "email": "anna@example.com"},
]  # fmt: skip


@pytest.fixture
def people(settings: Settings) -> Iterator[App]:
    app = App(settings, clock=lambda: NOW)
    import_lines(app.sessions, [json.dumps(p) for p in PEOPLE], NOW)
    set_preference(app, "bob", "sms", "reminder", True, NOW)  # a kind on sms
    with app.sessions() as session, session.begin():
        set_channel_opt_out(session, _row_id(app, "anna"), "email", True, NOW)
    with app.sessions() as session, session.begin():
        session.execute(_mark_invalid(), {"id": "annex"})
    yield app
    app.close()


def _row_id(app: App, external_id: str) -> int:
    from planner.store.recipients import recipient_id_of

    with app.sessions() as session:
        found = recipient_id_of(session, external_id)
    assert found is not None
    return found


def _mark_invalid() -> object:
    from sqlalchemy import text

    return text("UPDATE recipient SET sms_invalid = '21211 invalid number' WHERE external_id = :id")


def ids(app: App, **search: str) -> list[str]:
    with app.sessions() as session:
        return [r["id"] for r in list_recipients(session, RecipientSearch.parse(**search)).rows]


def test_search_by_id_prefix_email_and_phone(people: App) -> None:
    assert ids(people) == ["ann", "ann_b", "anna", "annex", "bob"]
    assert ids(people, id_prefix="ann") == ["ann", "ann_b", "anna", "annex"]
    assert ids(people, id_prefix="ann_") == ["ann_b"]  # '_' is a letter here, not LIKE's wildcard
    assert ids(people, id_prefix="ANN") == []  # ids are exact, on SQLite too
    assert ids(people, email="ann.lee@example.com") == ["ann"]  # whatever the case
    assert ids(people, email="ann@example.com") == []  # exact, not a prefix
    assert ids(people, phone="+1 (212) 555-0100") == ["annex"]
    assert ids(people, phone="0044 7700 900 123") == ["ann"]
    assert ids(people, q="ANN.LEE@example.com") == ["ann"]
    assert ids(people, q="+44 7700 900123") == ["ann"]
    assert ids(people, q="annie") == []


def test_filters_zone_opted_out_and_invalid(people: App) -> None:
    assert ids(people, zone="Europe/London") == ["ann", "annex"]
    assert ids(people, opted_out="email") == ["anna"]
    assert ids(people, opted_out="sms") == ["bob"]  # one kind on sms counts
    assert ids(people, opted_out="any") == ["anna", "bob"]
    assert ids(people, invalid="sms") == ["annex"]
    assert ids(people, invalid="email") == []
    assert ids(people, id_prefix="ann", zone="Europe/London", invalid="any") == ["annex"]


def test_rows_and_keyset_pages(people: App) -> None:
    with people.sessions() as session:
        first = list_recipients(session, RecipientSearch(), limit=2)
        second = list_recipients(session, RecipientSearch(), after=first.next_after, limit=2)
        last = list_recipients(session, RecipientSearch(), after=second.next_after, limit=2)
    assert [r["id"] for r in first.rows] == ["ann", "ann_b"] and first.next_after == "ann_b"
    assert [r["id"] for r in second.rows] == ["anna", "annex"] and second.next_after == "annex"
    assert [r["id"] for r in last.rows] == ["bob"] and last.next_after is None
    bob = last.rows[0]
    assert bob["subscriptions"] == 2
    assert bob["preferences"]["sms"] == {"opted_out": False, "opted_out_kinds": ["reminder"]}
    assert first.as_dict()["recipients"][0]["invalid"] == {"email": None, "sms": None}


def test_erased_recipients_are_not_listed(people: App) -> None:
    erase(people, "bob", NOW)
    assert ids(people) == ["ann", "ann_b", "anna", "annex"]


@pytest.mark.parametrize(
    ("search", "field"),
    [
        ({"phone": "12"}, "phone"),
        ({"email": "not-an-address"}, "email"),
        ({"zone": "Mars/Olympus"}, "zone"),
        ({"opted_out": "fax"}, "opted_out"),
        ({"invalid": "yes"}, "invalid"),
        ({"id_prefix": "a b"}, "id_prefix"),
        ({"q": "ann@"}, "q"),
        ({"q": "+44 12"}, "q"),
    ],
)
def test_bad_searches_name_the_field(search: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        RecipientSearch.parse(**search)
    assert caught.value.field == field


def test_bad_pages_name_the_field(people: App) -> None:
    with people.sessions() as session:
        for limit in (0, 201):
            with pytest.raises(InvalidInput, match="limit"):
                list_recipients(session, RecipientSearch(), limit=limit)
        with pytest.raises(InvalidInput, match="after"):
            list_recipients(session, RecipientSearch(), after="a b")
