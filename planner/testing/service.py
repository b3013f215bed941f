"""A throw-away planner service: temporary SQLite file, embedded Redis, capture adapter.

Recipients, subscriptions and engagement go in through :func:`planner.commands.importer.import_lines`,
the same validated path as ``planner import``: a helper call is a JSON line, so what the kit
accepts and rejects is exactly what the service does. The simulated clock
(:class:`planner.testing.clock.SimClock`) drives the service: the hourly planner run at each
top of the hour, and RQ jobs executed in-process at their scheduled instants.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

import redis

from adapters import Adapter, Message, SendResult
from planner.app import App, build_deliverer, build_runner
from planner.commands.importer import ImportReport, import_lines
from planner.commands.recipients import plan_changes
from planner.core.learned_time import recorded_basis
from planner.core.localtime import to_local
from planner.delivery.deliverer import Deliverer
from planner.run.runner import PlannerRunner, RunReport
from planner.settings import Settings
from planner.store.db import SessionFactory
from planner.store.deliveries import deliveries_with_recipient
from planner.store.digests import event_data_of
from planner.store.recipients import zone_of
from planner.store.subscriptions import any_due
from planner.testing import _logging
from planner.testing._redis import EmbeddedRedisServer
from planner.testing._template import copy_migrated_sqlite
from planner.testing.clock import SimClock, as_instant
from planner.testing.errors import KitError
from planner.testing.recipes import Recipes
from planner.testing.records import SENDING_STATUSES, DeliveryRecord, NextSend, record_of
from planner.testing.scheduler import SimulatedScheduler
from planner.testing.sent import RecordingCaptureAdapter, SentMessage, SentMessages, as_date
from planner.testing.settings import kit_database, kit_settings


class _Forwarding:
    """Sends through a real adapter (the demo's files), then records the message like the capture."""

    name: ClassVar[str] = "forwarding"
    channels: ClassVar[frozenset[str]] = frozenset({"email", "sms"})

    def __init__(self, target: Adapter, capture: RecordingCaptureAdapter) -> None:
        self.target = target
        self.capture = capture

    @classmethod
    def from_settings(cls, options: Mapping[str, str]) -> _Forwarding:
        raise KitError("the forwarding adapter is built by the kit, not from settings")

    def send(self, message: Message) -> SendResult:
        result = self.target.send(message)
        self.capture.send(message)
        return result

    def close(self) -> None:
        self.target.close()


class PlannerService(Recipes):
    """One throw-away service. Build it with a :class:`SimClock`, then :meth:`start` it.

    The fixtures do all of this; use the class directly only outside pytest.
    """

    def __init__(
        self,
        clock: SimClock,
        directory: Path,
        settings: Mapping[str, Any] | None = None,
        *,
        keep_directory: bool = True,
        seed: int | None = 0,
        forward_to: Mapping[str, Adapter] | None = None,
    ) -> None:
        super().__init__()
        self.clock = clock
        self._forward_to = dict(forward_to or {})
        self.directory = Path(directory)
        self._overrides = dict(settings or {})
        self._keep_directory = keep_directory
        self._seed = seed
        self._redis_server = EmbeddedRedisServer()
        self._app: App | None = None
        self._capture: RecordingCaptureAdapter | None = None
        self._deliverer: Deliverer | None = None
        self._runner: PlannerRunner | None = None
        self._scheduler: SimulatedScheduler | None = None
        self._last_planned: datetime | None = None
        self._logging = False
        self.plan_idle_hours = True
        """False skips the hourly run when no subscription is due within the horizon: much faster
        for long simulations, but planner_run history and the re-enqueueing of jobs lost from Redis
        then only happen at hours with work."""
        self.runs: list[RunReport] = []
        """The report of every planner run, in order."""
        self._reports = 0
        self.closed = False

    # -- life cycle -------------------------------------------------------------------------------

    def start(self) -> PlannerService:
        if self._app is not None:
            return self
        if self.closed:
            raise KitError("this kit service is closed")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            settings = kit_settings(self.directory, self._redis_server.start(), self._overrides)
            _logging.acquire()
            self._logging = True
            if not kit_database(self.directory).exists():
                copy_migrated_sqlite(kit_database(self.directory))  # migrations run once per process
            app = self._app = App(settings, clock=self.clock.now)
            app.upgrade_database()  # a no-op on the copy; migrates a file an older kit left
            capture = self._capture = RecordingCaptureAdapter(self._zone_of, self.clock.now)
            adapters: dict[str, Adapter] = {"email": capture, "sms": capture}
            for channel, target in self._forward_to.items():
                adapters[channel] = _Forwarding(target, capture)
            # The service's own templates (PLANNER_TEMPLATES_DIR, then the built-in ones), and so its
            # rule: a kind without templates is refused here as the API refuses it.
            self._deliverer = build_deliverer(app, adapters=adapters, renderer=app.templates)
            if self._seed is not None:
                # Retry jitter drawn from a seeded generator: a failing test fails the same way twice.
                self._deliverer.rng = random.Random(self._seed)
            self._runner = build_runner(app)
            self._scheduler = SimulatedScheduler(app.redis, self._deliverer, self.clock.now)
        except BaseException:
            self.close()
            raise
        self.clock.attach(self)
        return self

    def close(self) -> None:
        """Stop everything this service started (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self.clock.detach(self)
        if self._capture is not None:
            self._capture.close()
        if self._app is not None:
            self._app.close()
        self._redis_server.stop()
        if self._logging:
            _logging.release()
            self._logging = False
        if not self._keep_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> PlannerService:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _started(self) -> App:
        if self.closed:
            raise KitError("the kit service is closed")
        if self._app is None:
            raise KitError("the kit service is not started: call start() (the fixtures do)")
        return self._app

    # -- the parts, for tests that need to reach in -----------------------------------------------

    @property
    def app(self) -> App:
        return self._started()

    @property
    def settings(self) -> Settings:
        return self._started().settings

    @property
    def sessions(self) -> SessionFactory:
        return self._started().sessions

    @property
    def redis(self) -> redis.Redis:
        return self._started().redis

    @property
    def capture(self) -> RecordingCaptureAdapter:
        """The adapter behind both channels; set ``capture.fail_with`` to simulate provider errors."""
        self._started()
        assert self._capture is not None
        return self._capture

    @property
    def deliverer(self) -> Deliverer:
        self._started()
        assert self._deliverer is not None
        return self._deliverer

    @property
    def sent(self) -> SentMessages:
        """A live view of every message sent so far (see :class:`SentMessages`); readable after close."""
        if self._capture is None:
            raise KitError("the kit service is not started: call start() (the fixtures do)")
        return SentMessages(self._capture.snapshot)

    @property
    def sent_list(self) -> list[SentMessage]:
        return self.capture.snapshot()

    # -- data, through the import path ------------------------------------------------------------

    def import_lines(self, lines: Iterable[str]) -> ImportReport:
        """Import JSON Lines (the ``planner import`` format) at the simulated now; atomic."""
        app = self._started()
        materialised = [line for line in lines if line.strip()]
        self.clock.mark_used()
        report = import_lines(
            app.sessions, materialised, self.clock.now(), require_template=app.templates.require
        )
        # As the API and `planner import` do: a change inside the last run's window is planned now.
        plan_changes(app, report.recipient_ids, self.clock.now())
        for text in materialised:
            record = json.loads(text)
            if isinstance(record, dict) and record.get("type") == "recipient":
                self._recipients[str(record["id"])] = record
        return report

    def record_event(
        self,
        recipient_id: str,
        kind: str,
        data: Mapping[str, Any] | None = None,
        *,
        at: datetime | None = None,
        key: str | None = None,
    ) -> int:
        """Record an event for the recipient's next digest of ``kind`` (as ``POST /v1/events``),
        received at the simulated now; returns its id."""
        from planner.commands.events import record_event

        self.clock.mark_used()
        _, result = record_event(
            self._started(),
            recipient_id,
            kind,
            None if data is None else dict(data),
            self.clock.now(),
            occurred_at=at,
            idempotency_key=key,
        )
        return int(result["id"])

    def digest_events(self, delivery_id: int) -> list[dict[str, Any]]:
        """The ``data`` of the events a digest delivery listed (bound to it), oldest first."""
        with self._started().sessions() as session:
            return event_data_of(session, delivery_id)

    def import_file(self, path: str | Path) -> ImportReport:
        with Path(path).open(encoding="utf-8") as handle:
            return self.import_lines(handle)

    def _zone_of(self, recipient_id: str) -> str:
        known = self._recipients.get(recipient_id)
        if known is not None:
            return str(known["timezone"])
        with self.sessions() as session:
            zone = zone_of(session, recipient_id)
        return zone or "UTC"

    # -- reading the database ---------------------------------------------------------------------

    def deliveries(
        self,
        recipient: str | None = None,
        *,
        kind: str | None = None,
        channel: str | None = None,
        status: str | None = None,
    ) -> list[DeliveryRecord]:
        """Every delivery the planner decided (sent, suppressed, skipped, missed...), oldest first."""
        with self.sessions() as session:
            rows = deliveries_with_recipient(
                session, recipient=recipient, kind=kind, channel=channel, status=status
            )
        return [record_of(d, external_id) for d, external_id in rows]

    # -- ad-hoc sends and provider reports --------------------------------------------------------

    def notify(
        self,
        recipient_id: str,
        kind: str,
        channel: str = "email",
        *,
        data: Mapping[str, Any] | None = None,
        dedup_key: str | None = None,
        at: datetime | None = None,
        priority: str | None = None,
        fallback: Mapping[str, Any] | None = None,
    ) -> int:
        """An ad-hoc notification (as ``POST /v1/notify``) at the simulated now; returns its delivery
        id (the first one's, for a repeated ``dedup_key``). It goes out as the clock moves on."""
        from planner.commands.notify import notify

        self.clock.mark_used()
        result = notify(
            self._started(),
            recipient_id,
            kind,
            channel,
            now=self.clock.now(),
            dedup_key=dedup_key,
            data=None if data is None else dict(data),
            priority=priority,
            at=at,
            actor="testing-kit",
            fallback=None if fallback is None else dict(fallback),
        )
        return int(result.delivery["id"])

    def provider_report(
        self, delivery_id: int, status: str, *, code: str | None = None, dead_address: bool | None = None
    ) -> dict[str, Any]:
        """What a provider says of a sent message, applied as its webhook is (at the simulated now):
        ``delivered``, ``bounced``, ``undelivered``, ``failed``, ``deferred`` or ``complained``.
        ``dead_address`` (default: True for ``bounced``) marks the address invalid. Returns what
        the report changed (``effects``: the fallback it planned, say)."""
        from planner.commands.feedback import apply_report
        from planner.core.feedback import PROVIDER_STATUSES, DeliveryReport
        from planner.store.queries import get_delivery

        if status not in PROVIDER_STATUSES:
            raise KitError(f"status: {status!r} is invalid; expected one of {', '.join(PROVIDER_STATUSES)}")
        with self.sessions() as session:
            message_id = get_delivery(session, delivery_id)["provider_message_id"]
        if message_id is None:
            raise KitError(f"delivery {delivery_id} has not been sent: the provider has nothing to report")
        self.clock.mark_used()
        self._reports += 1
        report = DeliveryReport(
            provider="kit",
            event_id=f"kit-{delivery_id}-{status}-{self._reports}",
            message_id=message_id,
            status=status,
            code=code,
            dead_address=status == "bounced" if dead_address is None else dead_address,
            complaint=status == "complained",
        )
        return apply_report(self._started(), report, self.clock.now())

    def next_send(
        self, recipient: str, kind: str, *, channel: str | None = None, on: date | str | None = None
    ) -> NextSend:
        """When the recipient's ``kind`` goes next (on the local date ``on`` when given): the planned
        delivery when the planner has decided that date, else the planner's decision run ahead
        (``simulate``) on today's facts. Looks a week ahead for the first send still to come."""
        zone = self._zone_of(recipient)
        first = self.clock.today(zone) if on is None else as_date(on, "on")
        now = self.clock.now()
        for offset in range(1 if on is not None else 8):
            day = first + timedelta(days=offset)
            found = self._decided_send(recipient, kind, channel, day) or self._simulated_send(
                recipient, kind, channel, day
            )
            if found is not None and on is not None:
                return found
            if found is not None and found.send_local is not None and found.send_local >= now:
                return found
        raise KitError(f"{recipient} {kind}: no send {'on ' + str(first) if on else 'in the coming week'}")

    def _decided_send(self, recipient: str, kind: str, channel: str | None, day: date) -> NextSend | None:
        rows = [
            r
            for r in self.deliveries(recipient, kind=kind, channel=channel)
            if r.local_date == day and r.status not in ("cancelled",)
        ]
        if not rows:
            return None
        row = rows[0]
        if row.status not in SENDING_STATUSES:
            return NextSend(day, None, f"decided: {row.status} ({row.reason})", decided=True)
        learned = row.learned or {}
        why = "a fixed time"
        if learned:
            why = f"{learned['basis']} {learned['chosen']}: {recorded_basis(learned)}"
        return NextSend(day, to_local(row.scheduled_at, self._zone_of(recipient)), why, decided=True)

    def _simulated_send(self, recipient: str, kind: str, channel: str | None, day: date) -> NextSend | None:
        from planner.readmodels.simulate import simulate_recipient

        sends, _ = simulate_recipient(self._started(), recipient, day, 1)
        for send in sends:
            if send.kind == kind and (channel is None or send.channel == channel):
                why = send.notes[0] if send.choice is not None else "a fixed time"
                return NextSend(day, send.send_local, why, decided=False)
        return None

    # -- driven by the clock ----------------------------------------------------------------------

    def run_planner(self, now: datetime | None = None) -> RunReport:
        """One planner run at ``now`` (default: the simulated now), as the hourly job does it.

        The clock calls this at every top of the hour; call it yourself to test re-runs.
        """
        self._started()
        assert self._runner is not None
        at = self.clock.now() if now is None else as_instant(now, "now")
        self.clock.mark_used()
        report = self._runner.run(at, self.settings.horizon)
        self.runs.append(report)
        return report

    def on_instant(self, now: datetime, *, top_of_hour: bool) -> None:
        """Everything due at ``now``: the hourly run on the hour, then the due jobs."""
        if self.closed:
            return
        self._jobs().forget_idle_state()
        if top_of_hour and (self._last_planned is None or self._last_planned < now):
            self._last_planned = now
            if self.plan_idle_hours or self._subscriptions_due(now):
                self.run_planner(now)
        self.run_due_jobs(now)

    def _subscriptions_due(self, now: datetime) -> bool:
        with self.sessions() as session:
            return any_due(session, now + self.settings.horizon)

    def _jobs(self) -> SimulatedScheduler:
        self._started()
        assert self._scheduler is not None
        return self._scheduler

    def next_job_at(self) -> datetime | None:
        """The earliest instant a job waits for in RQ's scheduled registries (None: none waits)."""
        return None if self.closed else self._jobs().next_job_at()

    def run_due_jobs(self, now: datetime | None = None) -> int:
        """Move the scheduled jobs due by ``now`` to their queues and run every queued job.

        Returns how many jobs ran. The clock calls this at every stop.
        """
        return self._jobs().run_due_jobs(None if now is None else as_instant(now, "now"))

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("running" if self._app is not None else "not started")
        return f"<PlannerService {state} at {self.clock.now().isoformat()} in {self.directory}>"
