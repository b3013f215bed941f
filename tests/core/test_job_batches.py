"""Which deliveries share an RQ job: per chunk, and per run for the sends after the run's window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from planner.core.job_batches import JobBatch, RunJobs, assign_batches

END = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
SOONER, LATER = END - timedelta(minutes=30), END + timedelta(hours=2)


def items(at: datetime, keys: range, channel: str = "email") -> list[tuple[datetime, str, str, object]]:
    return [(at, channel, "default", key) for key in keys]


def batches(assigned: dict[object, str], at: datetime) -> list[JobBatch]:
    by_job: dict[str, list[int]] = {}
    for key, job_id in assigned.items():
        by_job.setdefault(job_id, []).append(int(str(key)))
    return [JobBatch(job_id, "default", "email", at, tuple(ids)) for job_id, ids in by_job.items()]


def test_a_chunk_gets_one_job_per_instant_channel_and_queue_up_to_the_batch_size() -> None:
    assigned = assign_batches(items(SOONER, range(5)) + items(SOONER, range(5, 7), "sms"), 3)
    jobs = {}
    for key, job_id in assigned.items():
        jobs.setdefault(job_id, []).append(key)
    assert sorted(jobs.values()) == [[0, 1, 2], [3, 4], [5, 6]]


def test_a_later_instant_joins_the_runs_open_job_across_chunks_and_waits_for_the_runs_end() -> None:
    run = RunJobs(batch_size=5, hold_after=END)
    first = run.assign(items(LATER, range(3)) + items(SOONER, range(100, 102)))
    second = run.assign(items(LATER, range(3, 7)) + items(SOONER, range(102, 104)))
    # The later instant's 7 deliveries fill one job of 5, then a second; each chunk's sooner ones
    # have their own job.
    assert len({first[k] for k in range(3)} | {second[k] for k in range(3, 5)}) == 1
    assert second[5] == second[6] != second[4]
    assert first[100] == first[101] and second[102] == second[103] and first[100] != second[102]

    assert run.hold(batches({k: first[k] for k in range(3)}, LATER)) == []  # held
    sooner = batches({100: first[100], 101: first[101]}, SOONER)
    assert run.hold(sooner) == sooner  # enqueued after the chunk's commit
    run.hold(batches({k: second[k] for k in range(3, 7)}, LATER))
    released = run.release()
    assert sorted(b.delivery_ids for b in released) == [(0, 1, 2, 3, 4), (5, 6)]
    assert run.release() == []


def test_a_send_at_the_windows_end_is_not_held() -> None:
    run = RunJobs(batch_size=5, hold_after=END)
    at_end = batches(run.assign(items(END, range(2))), END)
    assert run.hold(at_end) == at_end and run.release() == []
