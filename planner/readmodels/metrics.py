"""Prometheus metrics, computed from the database and Redis at scrape time.

Nothing is counted in process memory: every API process and every scrape sees the same numbers,
and a restart loses nothing. A dedicated registry is built per scrape around one collector, which
runs a constant number of aggregate queries (histogram buckets are counted by the database).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from planner.app import App
from planner.readmodels.status import (
    DEAD_WINDOW,
    SETTLED_WINDOW,
    count_windows,
    delivery_wait,
    planner_lateness,
    queue_state,
    retention_state,
)
from planner.readmodels.webhooks import WebhookState, failing_for, webhook_state
from planner.store.db import Session
from planner.store.digests import digest_counts
from planner.store.queries import pause_list
from planner.store.reports import attempts_used, lateness_counts, provider_status_counts, status_reason_counts

LATENESS_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
ATTEMPT_BUCKETS = (1.0, 2.0, 3.0, 4.0, 5.0, 10.0)
#: Histograms cover deliveries finished in this trailing window.
WINDOW = timedelta(hours=24)


def _lateness(session: Session, since: datetime) -> HistogramMetricFamily:
    family = HistogramMetricFamily(
        "planner_send_lateness_seconds",
        "Sent minus scheduled time of deliveries sent in the last 24 hours.",
        labels=["channel"],
    )
    for counts in lateness_counts(session, since, LATENESS_BUCKETS):
        buckets = [(str(le), n) for le, n in zip(LATENESS_BUCKETS, counts.at_most, strict=True)]
        family.add_metric([counts.channel], [*buckets, ("+Inf", counts.sent)], counts.seconds)
    return family


def _attempts(session: Session, since: datetime) -> HistogramMetricFamily:
    per_channel: dict[str, dict[int, int]] = defaultdict(dict)
    for channel, attempts, count in attempts_used(session, since):
        per_channel[channel][attempts] = count
    family = HistogramMetricFamily(
        "planner_delivery_attempts",
        "Attempts used by deliveries that ended (sent or dead) in the last 24 hours.",
        labels=["channel"],
    )
    for channel, counts in sorted(per_channel.items()):
        buckets = [(str(le), sum(n for a, n in counts.items() if a <= le)) for le in ATTEMPT_BUCKETS]
        total = sum(counts.values())
        family.add_metric(
            [channel], [*buckets, ("+Inf", total)], float(sum(a * n for a, n in counts.items()))
        )
    return family


def _provider_statuses(session: Session, since: datetime) -> list[Metric]:
    """What providers reported of the messages sent in the window, and the delivered share of the
    reported ones per channel (a message no callback has reached yet counts in neither)."""
    statuses = GaugeMetricFamily(
        "planner_provider_status",
        "Deliveries sent in the last 24 hours, by the status their provider last reported.",
        labels=["channel", "status"],
    )
    ratio = GaugeMetricFamily(
        "planner_provider_delivered_ratio",
        "Share of the deliveries sent in the last 24 hours with a provider report that were delivered.",
        labels=["channel"],
    )
    reported: dict[str, int] = defaultdict(int)
    delivered: dict[str, int] = defaultdict(int)
    for channel, status, count in provider_status_counts(session, since):
        statuses.add_metric([channel, status], float(count))
        reported[channel] += count
        delivered[channel] += count if status == "delivered" else 0
    for channel, total in sorted(reported.items()):
        ratio.add_metric([channel], delivered[channel] / total)
    return [statuses, ratio]


def _pauses(paused: list[dict[str, Any]]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "planner_paused",
        "1 per active pause; reason 'adapter_config' when a worker paused a channel whose adapter "
        "settings the provider refused, '' for an operator's pause.",
        labels=["scope", "value", "reason"],
    )
    for pause in paused:
        family.add_metric([pause["scope"], pause["value"], pause["reason"] or ""], 1.0)
    return family


def _digests(waiting: int, dropped: dict[str, int]) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "planner_digest_events_waiting", "Digest events not yet in a sent or sending digest.", value=waiting
    )
    family = CounterMetricFamily(
        "planner_digest_events_dropped",
        "Digest events dropped past PLANNER_DIGEST_RETENTION: 'unsent' never went out in a digest.",
        labels=["state"],
    )
    for state in ("unsent", "sent"):
        family.add_metric([state], float(dropped[state]))
    yield family


def _webhooks(state: WebhookState, now: datetime) -> Iterator[Metric]:
    events = GaugeMetricFamily(
        "planner_webhook_events_waiting",
        "Outgoing webhook events not yet delivered, by endpoint and status (pending: waiting for an "
        "attempt; sending: an attempt in flight).",
        labels=["endpoint", "status"],
    )
    for endpoint_id, status, count in sorted(state.counts):
        events.add_metric([str(endpoint_id), status], float(count))
    yield events
    enabled = GaugeMetricFamily(
        "planner_webhook_endpoint_enabled",
        "1 per enabled webhook endpoint, 0 per disabled one; reason 'failing' when the service disabled "
        "it after PLANNER_WEBHOOKS_DISABLE_AFTER of failures, 'operator' when someone did.",
        labels=["endpoint", "reason"],
    )
    failing = GaugeMetricFamily(
        "planner_webhook_endpoint_failing_seconds",
        "How long an enabled webhook endpoint has failed without one success (0 when it is fine).",
        labels=["endpoint"],
    )
    for e in state.endpoints:
        reason = "" if e.enabled else ("failing" if e in state.disabled_failing else "operator")
        enabled.add_metric([str(e.id), reason], 1.0 if e.enabled else 0.0)
        failing.add_metric([str(e.id)], failing_for(e, now))
    yield enabled
    yield failing


def _retention(state: dict[str, Any]) -> Iterator[Metric]:
    removed = CounterMetricFamily(
        "planner_pruned_rows",
        "Rows the retention removed (PLANNER_*_RETENTION), by kind of record; partitions_* count months.",
        labels=["kind"],
    )
    for kind, rows in state["removed"].items():
        removed.add_metric([kind], float(rows))
    yield removed
    if state["last_pass"] is not None:
        yield GaugeMetricFamily(
            "planner_retention_last_pass_timestamp_seconds",
            "When the last retention pass started (Unix time).",
            value=datetime.fromisoformat(state["last_pass"]).timestamp(),
        )
    if state["partitions"]["state"] == "partitioned":
        yield GaugeMetricFamily(
            "planner_delivery_partitions",
            "Months the delivery table has a partition for (PostgreSQL).",
            value=float(state["partitions"]["months"]),
        )


class PlannerCollector(Collector):
    def __init__(self, app: App, now: datetime) -> None:
        self.app = app
        self.now = now

    def collect(self) -> Iterator[Metric]:
        since = self.now - WINDOW
        with self.app.sessions() as session:
            counts = status_reason_counts(session, count_windows(self.now))
            lateness = _lateness(session, since)
            attempts = _attempts(session, since)
            paused = pause_list(session)
            provider = _provider_statuses(session, since)
            waiting, dropped = digest_counts(session)
        deliveries = GaugeMetricFamily(
            "planner_deliveries",
            "Deliveries by status and reason: every one in flight (planned, queued, sending, retrying), "
            f"the dead ones due in the last {DEAD_WINDOW} and the settled ones due in the last "
            f"{SETTLED_WINDOW}.",
            labels=["status", "reason"],
        )
        for status, reason, count in sorted(counts, key=lambda r: (r[0], r[1] or "")):
            deliveries.add_metric([status, reason or ""], count)
        yield deliveries
        yield lateness
        yield attempts
        yield from provider
        yield _pauses(paused)
        yield from _digests(waiting, dropped)
        yield from _webhooks(webhook_state(self.app), self.now)
        yield from self._queues()
        yield from self._planner()
        yield from _retention(retention_state(self.app))

    def _queues(self) -> Iterator[Metric]:
        state = queue_state(self.app.redis)
        depth = GaugeMetricFamily("planner_queue_depth", "Jobs waiting in each RQ queue.", labels=["queue"])
        scheduled = GaugeMetricFamily(
            "planner_scheduled_jobs", "Jobs scheduled for later in each RQ queue.", labels=["queue"]
        )
        for name, value in state.depth.items():
            depth.add_metric([name], value)
            scheduled.add_metric([name], state.scheduled[name])
        yield depth
        yield scheduled
        yield GaugeMetricFamily("planner_workers", "Live RQ workers.", value=len(state.workers))

    def _planner(self) -> Iterator[Metric]:
        lateness = planner_lateness(self.app, self.now)
        run = lateness.last_run
        if run is not None:
            counts = run.get("counts") or {}
            yield GaugeMetricFamily(
                "planner_last_run_duration_seconds",
                "Duration of the last planner run.",
                value=float(counts.get("duration_seconds", 0.0)),
            )
            yield GaugeMetricFamily(
                "planner_last_run_succeeded",
                "1 if the last planner run succeeded, else 0.",
                value=1.0 if run["status"] == "succeeded" else 0.0,
            )
            outcomes = GaugeMetricFamily(
                "planner_last_run_outcomes",
                "Deliveries created by the last run, by outcome.",
                labels=["outcome"],
            )
            for outcome, count in sorted((counts.get("outcomes") or {}).items()):
                outcomes.add_metric([outcome], float(count))
            yield outcomes
            reasons = GaugeMetricFamily(
                "planner_last_run_reasons",
                "Deliveries created by the last run, by reason.",
                labels=["reason"],
            )
            for reason, count in sorted((counts.get("reasons") or {}).items()):
                reasons.add_metric([reason], float(count))
            yield reasons
        if lateness.since_last_success is not None:
            yield GaugeMetricFamily(
                "planner_seconds_since_last_successful_run",
                "Seconds since the last successful planner run started.",
                value=lateness.since_last_success.total_seconds(),
            )
        yield GaugeMetricFamily(
            "planner_overdue_seconds",
            "How far the oldest overdue subscription cursor is behind (0 when none is overdue).",
            value=lateness.overdue_by.total_seconds() if lateness.overdue_by else 0.0,
        )
        wait = delivery_wait(self.app, self.now)
        yield GaugeMetricFamily(
            "planner_delivery_wait_seconds",
            "How long the oldest due delivery has waited for a worker (0 when none is waiting).",
            value=wait.waited.total_seconds() if wait.waited else 0.0,
        )


def render_metrics(app: App, now: datetime) -> bytes:
    """The Prometheus text exposition of the service's metrics right now."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PlannerCollector(app, now))
    return generate_latest(registry)
