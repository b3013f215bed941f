"""A timeline entry's detail in words: what the dashboard and `deliveries show` print."""

from __future__ import annotations

from planner.readmodels.timeline_words import detail_words


def test_a_planned_entry_with_engagement_and_a_deferral_reads_as_sentences() -> None:
    detail = {
        "occurrence_at": "2026-03-07T21:30:00+00:00",
        "wall_time": "22:30",
        "engagement": {"tier": "inactive>=0d:every 1d", "inactive_days": 3, "days_since_last_send": None},
        "quiet_hours": {
            "window": "21:00-08:00",
            "deferred_from": "2026-03-07T22:30:00+00:00",
            "deferred_to": "2026-03-08T08:00:00+00:00",
        },
        "actor": "api-token",
    }
    assert detail_words(detail, ("actor",)) == (
        "occurrence 2026-03-07 21:30Z; wall time 22:30; "
        "engagement tier inactive>=0d:every 1d: inactive 3 days, nothing sent before; "
        "quiet hours 21:00-08:00: deferred from 2026-03-07 22:30Z to 2026-03-08 08:00Z"
    )
    assert detail_words(detail).endswith("; by api-token")


def test_dst_reassignments_failures_and_unknown_keys() -> None:
    assert detail_words({"dst": "gap", "dst_shift_minutes": 60}) == (
        "DST gap: the wall time does not exist that day, shifted 60 min"
    )
    reassigned = {
        "job_id": "dlv-2", "next_attempt_at": "2026-03-07T15:00:00+00:00", "previous_status": "dead",
        "previous_reason": None, "previous_attempts": 5, "previous_job_id": "dlv-1", "attempts": "reset",
    }  # fmt: skip
    assert detail_words(reassigned) == (
        "job dlv-2; next attempt 2026-03-07 15:00Z; was dead; after 5 attempt(s); previous job dlv-1; "
        "attempts reset"
    )
    assert detail_words({"error": "550 mailbox unavailable", "attempt": 2, "late_by_seconds": 7260}) == (
        "error: 550 mailbox unavailable; attempt 2; late by 2 h 1 min"
    )
    assert detail_words({"some_flag": True, "items": ["a", "b"], "nested": {"x": None}}) == (
        "some flag yes; items a, b; nested (x none)"
    )
    assert detail_words(None) == ""


def test_a_learned_choice_reads_as_its_time_and_why() -> None:
    learned = {"window": "07:00-21:00", "chosen": "19:30", "basis": "learned", "window_weight": 8.0,
               "window_events": 10, "weight": 5.0, "events": 6}  # fmt: skip
    assert detail_words({"learned_time": learned}) == (
        "learned time 19:30 in the window 07:00-21:00: 62% of the recent engagement in the window "
        "(5.0 of 8.0, 6 event(s))"
    )
    default = {"window": "07:00-21:00", "chosen": "09:00", "basis": "default", "window_weight": 1.25,
               "window_events": 2, "quiet_slots": ["20:00", "20:30"]}  # fmt: skip
    assert detail_words({"learned_time": default}) == (
        "default time 09:00 in the window 07:00-21:00: too little history (recent engagement 1.2 in the "
        "window, under 3) (half hours left out: in quiet hours 20:00, 20:30)"
    )
    recorded_text = dict(default, why="the window had passed", quiet_slots=[])
    assert detail_words({"learned_time": recorded_text}).endswith(": the window had passed")


def test_an_older_backoff_skip_with_its_facts_twice_reads_them_once() -> None:
    facts = {"tier": "inactive>=30d:every 7d", "inactive_days": 40, "days_since_last_send": 2}
    detail = {"wall_time": "22:30", "engagement": facts, **facts}
    assert detail_words(detail) == (
        "wall time 22:30; engagement tier inactive>=30d:every 7d: inactive 40 days, last send 2 days before"
    )
