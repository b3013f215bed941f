"""A throw-away planner service: temporary SQLite file, embedded Redis, capture adapter.

Recipients, subscriptions and engagement go in through :func:`planner.importer.import_lines`,
the same validated path as ``planner import``: a helper call is a JSON line, so what the kit
accepts and rejects is exactly what the service does. The simulated clock
(:class:`planner.testing.clock.SimClock`) drives the service: the hourly planner run at each
top of the hour, and RQ jobs executed in-process at their scheduled instants.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Final

import redis
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from rq.timeouts import BaseDeathPenalty
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from sqlmodel import col

from adapters import Adapter, Message, SendResult
from planner import jobs
from planner.app import App
from planner.delivery.deliverer import Deliverer
from planner.delivery.templating import Renderer
from planner.operations.importer import ImportReport, import_lines
from planner.operations.worker import build_deliverer
from planner.run.runner import PlannerRunner, RunReport, build_runner
from planner.settings import QUEUES, Settings
from planner.store.models import Delivery, Recipient, Subscription
from planner.testing import _logging
from planner.testing._redis import EmbeddedRedisServer
from planner.testing.clock import SimClock, as_instant
from planner.testing.sent import RecordingCaptureAdapter, SentMessage, SentMessages

KIT_DEFAULTS: Final[Mapping[str, Any]] = {
    # High enough never to throttle a test; set them lower to test the provider limits.
    "rate_limit_email": "100000/second",
    "rate_limit_sms": "100000/second",
}
OWNED_SETTINGS: Final = frozenset({"database_url", "redis_url", "email_adapter", "sms_adapter", "outbox_dir"})
MAX_JOBS_PER_INSTANT: Final = 10_000

QuietHoursSpec = str | tuple[str, str] | Mapping[str, str]


class _Auto:
    """Marks an address the kit makes up (``<id>@example.com``, a +1555 number)."""

    def __repr__(self) -> str:
        return "AUTO"


AUTO: Final = _Auto()


class KitError(RuntimeError):
    """The kit cannot do what was asked (closed service, runaway retries, unknown recipient)."""


class JobFailed(KitError):
    """A delivery job raised inside the in-process worker; the original error is the cause."""


def kit_settings(directory: Path, redis_url: str, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Settings for a kit service: defaults, then ``overrides``; never the environment or planner.toml.

    A developer's ``PLANNER_*`` variables or a ``planner.toml`` in the working directory must not
    change what a test sees (nor point it at a real database).
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(Settings.model_fields))
    if unknown:
        raise ValueError(
            f"unknown planner setting(s) {unknown}; expected some of {sorted(Settings.model_fields)}"
        )
    owned = sorted(set(overrides) & OWNED_SETTINGS)
    if owned:
        raise ValueError(
            f"the testing kit owns {owned}: it runs its own SQLite file, Redis and capture adapter"
        )
    values: dict[str, Any] = {
        **KIT_DEFAULTS,
        **overrides,
        "database_url": f"sqlite:///{directory / 'planner.db'}",
        "redis_url": redis_url,
        "email_adapter": "capture",
        "sms_adapter": "capture",
        "outbox_dir": directory / "outbox",
    }
    return _KitSettings(**values)


class _KitSettings(Settings):
    model_config = SettingsConfigDict(**{**Settings.model_config, "toml_file": None})

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


@dataclass(frozen=True)
class DeliveryRecord:
    """A delivery row as a test reads it: what was decided for one occurrence, and why."""

    id: int
    recipient: str
    kind: str
    channel: str
    local_date: date | None
    occurrence_at: datetime | None
    scheduled_at: datetime
    status: str
    reason: str | None
    attempts: int
    sent_at: datetime | None

    def __str__(self) -> str:
        day = self.local_date.isoformat() if self.local_date else "-"
        why = f" ({self.reason})" if self.reason else ""
        return (
            f"#{self.id} {self.recipient} {self.kind}/{self.channel} {day} "
            f"due {self.scheduled_at.strftime('%Y-%m-%dT%H:%MZ')}: {self.status}{why}"
        )


def _quiet_hours_json(spec: Mapping[str, QuietHoursSpec]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for channel, window in spec.items():
        if window == "none":  # the import format's explicit "no quiet hours"
            result[channel] = "none"
        elif isinstance(window, str):
            start, sep, end = window.partition("-")
            if not sep:
                raise ValueError(f"quiet_hours[{channel!r}]: {window!r} is not 'HH:MM-HH:MM'")
            result[channel] = {"start": start.strip(), "end": end.strip()}
        elif isinstance(window, tuple):
            start, end = window
            result[channel] = {"start": start, "end": end}
        else:
            result[channel] = dict(window)
    return result


def _days_json(days: str | Sequence[str]) -> str | list[str]:
    return days if isinstance(days, str) else list(days)


def _made_up_email(recipient_id: str) -> str:
    local = re.sub(r"[^A-Za-z0-9._-]", "-", recipient_id).strip(".") or "recipient"
    return f"{local}@example.com"


class _NoTimeout(BaseDeathPenalty):
    # RQ's default alarm needs the main thread and real seconds; a kit job is never killed.
    def setup_death_penalty(self) -> None:
        pass

    def cancel_death_penalty(self) -> None:
        pass


class _KitWorker(SimpleWorker):
    """Used without ``work()``: no birth registration, pubsub thread or signal handlers."""

    death_penalty_class = _NoTimeout
    log_result_lifespan = False


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


class PlannerService:
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
        self._queues: list[Queue] = []
        self._worker: SimpleWorker | None = None
        self._job_error: BaseException | None = None
        self._recipients: dict[str, dict[str, Any]] = {}
        self._phones = itertools.count(1)
        self._last_planned: datetime | None = None
        self._idle_state: tuple[datetime | None, bool] | None = None
        self._logging = False
        self.plan_idle_hours = True
        """False skips the hourly run when no subscription is due within the horizon: much faster
        for long simulations, but planner_run history and the re-enqueueing of jobs lost from Redis
        then only happen at hours with work."""
        self.runs: list[RunReport] = []
        """The report of every planner run, in order."""
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
            app = self._app = App(settings, clock=self.clock.now)
            app.upgrade_database()
            capture = self._capture = RecordingCaptureAdapter(self._zone_of, self.clock.now)
            # generic_fallback: a team can test a schedule before writing the copy for its kinds.
            renderer = Renderer(settings.templates_dir, generic_fallback=True)
            adapters: dict[str, Adapter] = {"email": capture, "sms": capture}
            for channel, target in self._forward_to.items():
                adapters[channel] = _Forwarding(target, capture)
            self._deliverer = build_deliverer(app, adapters=adapters, renderer=renderer)
            if self._seed is not None:
                # Retry jitter drawn from a seeded generator: a failing test fails the same way twice.
                self._deliverer.rng = random.Random(self._seed)
            self._runner = build_runner(app)
            self._queues, self._worker = self._make_worker(app.redis)
        except BaseException:
            self.close()
            raise
        self.clock.attach(self)
        return self

    def _make_worker(self, connection: redis.Redis) -> tuple[list[Queue], SimpleWorker]:
        queues = [Queue(name, connection=connection) for name in QUEUES]
        worker = _KitWorker(
            queues,
            connection=connection,
            exception_handlers=[self._remember_job_error],
            disable_default_exception_handler=True,
        )
        # RQ pins its own logger at INFO; a line per job would flood a failing test's report.
        worker.log = logging.getLogger("planner.testing.worker")
        return queues, worker

    def close(self) -> None:
        """Stop everything this service started (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self.clock.detach(self)
        if self._deliverer is not None and jobs._deliverer is self._deliverer:
            jobs.install(None)
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
    def sessions(self) -> sessionmaker[Session]:
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

    def add_recipient(
        self,
        recipient_id: str,
        *,
        timezone: str,
        email: str | _Auto | None = AUTO,
        phone: str | _Auto | None = AUTO,
        quiet_hours: Mapping[str, QuietHoursSpec] | None = None,
        opt_out: Iterable[str] = (),
        subscriptions: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        """Create (or replace) a recipient as one import line.

        ``email``/``phone`` default to made-up addresses; pass ``None`` for none. ``quiet_hours``
        maps a channel to ``("21:00", "08:00")``, ``"21:00-08:00"`` or ``{"start": ..., "end": ...}``.
        ``subscriptions`` are import-format objects (``{"kind", "channel", "at", "days"}``).
        """
        line: dict[str, Any] = {"type": "recipient", "id": recipient_id, "timezone": timezone}
        line["email"] = _made_up_email(recipient_id) if isinstance(email, _Auto) else email
        line["phone"] = f"+1555{next(self._phones):07d}" if isinstance(phone, _Auto) else phone
        if quiet_hours:
            line["quiet_hours"] = _quiet_hours_json(quiet_hours)
        opted = list(opt_out)
        if opted:
            line["opt_out"] = opted
        line["subscriptions"] = [dict(s) for s in subscriptions]
        self._import_recipient(line)

    def update_recipient(self, recipient_id: str, **changes: Any) -> None:
        """Change ``timezone``, ``email``, ``phone``, ``quiet_hours`` or ``opt_out`` (the service's
        rules for a changed zone or quiet hours apply: pending future sends are re-planned)."""
        line = dict(self._recipient(recipient_id))
        allowed = {"timezone", "email", "phone", "quiet_hours", "opt_out"}
        unknown = sorted(set(changes) - allowed)
        if unknown:
            raise TypeError(
                f"update_recipient: unknown field(s) {unknown}; expected some of {sorted(allowed)}"
            )
        for name, value in changes.items():
            if name == "quiet_hours":
                value = _quiet_hours_json(value) if value else None
            elif name == "opt_out":
                value = list(value)
            if value is None or value == []:
                line.pop(name, None)
            else:
                line[name] = value
        self._import_recipient(line)

    def subscribe(
        self,
        recipient_id: str,
        kind: str,
        *,
        at: str,
        channel: str = "email",
        days: str | Sequence[str] = "daily",
        active: bool = True,
    ) -> None:
        """Add (or change) the recipient's ``kind``/``channel`` subscription: ``at`` 'HH:MM' local,
        ``days`` 'daily', 'weekdays', 'weekends' or weekday names such as ``["mon", "thu"]``."""
        line = dict(self._recipient(recipient_id))
        subscription: dict[str, Any] = {"kind": kind, "channel": channel, "at": at, "days": _days_json(days)}
        if not active:
            subscription["active"] = False
        others = [
            s for s in line.get("subscriptions", []) if (s.get("kind"), s.get("channel")) != (kind, channel)
        ]
        line["subscriptions"] = [*others, subscription]
        self._import_recipient(line)

    def unsubscribe(self, recipient_id: str, kind: str, *, channel: str = "email") -> None:
        line = dict(self._recipient(recipient_id))
        subscriptions = line.get("subscriptions", [])
        kept = [s for s in subscriptions if (s.get("kind"), s.get("channel")) != (kind, channel)]
        if len(kept) == len(subscriptions):
            raise KitError(f"{recipient_id!r} has no {kind}/{channel} subscription")
        line["subscriptions"] = kept
        self._import_recipient(line)

    def engage(
        self,
        recipient_id: str,
        event: str = "opened",
        *,
        at: datetime | str | None = None,
        kind: str | None = None,
    ) -> None:
        """Record an engagement event (``opened``, ``clicked``, ``replied``), by default now."""
        when = self.clock.now() if at is None else at
        stamp = (
            as_instant(when, "at").isoformat().replace("+00:00", "Z") if isinstance(when, datetime) else when
        )
        line: dict[str, Any] = {
            "type": "engagement",
            "recipient_id": recipient_id,
            "event": event,
            "at": stamp,
        }
        if kind is not None:
            line["kind"] = kind
        self.import_lines([json.dumps(line)])

    def import_lines(self, lines: Iterable[str]) -> ImportReport:
        """Import JSON Lines (the ``planner import`` format) at the simulated now; atomic."""
        app = self._started()
        materialised = [line for line in lines if line.strip()]
        self.clock.mark_used()
        report = import_lines(app.sessions, materialised, self.clock.now())
        for text in materialised:
            record = json.loads(text)
            if isinstance(record, dict) and record.get("type") == "recipient":
                self._recipients[str(record["id"])] = record
        return report

    def import_file(self, path: str | Path) -> ImportReport:
        with Path(path).open(encoding="utf-8") as handle:
            return self.import_lines(handle)

    def _import_recipient(self, line: dict[str, Any]) -> None:
        self.import_lines([json.dumps({k: v for k, v in line.items() if v is not None})])

    def _recipient(self, recipient_id: str) -> dict[str, Any]:
        try:
            return self._recipients[recipient_id]
        except KeyError:
            raise KitError(f"unknown recipient {recipient_id!r}; add it first with add_recipient") from None

    def recipient_line(self, recipient_id: str) -> dict[str, Any]:
        """The recipient as last imported (a copy of the JSON object)."""
        return json.loads(json.dumps(self._recipient(recipient_id)))  # type: ignore[no-any-return]

    def _zone_of(self, recipient_id: str) -> str:
        known = self._recipients.get(recipient_id)
        if known is not None:
            return str(known["timezone"])
        with self.sessions() as session:
            zone = session.scalar(
                select(col(Recipient.timezone)).where(col(Recipient.external_id) == recipient_id)
            )
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
        stmt = (
            select(Delivery, col(Recipient.external_id))
            .join(Recipient, col(Recipient.id) == col(Delivery.recipient_id))
            .order_by(col(Delivery.scheduled_at), col(Delivery.id))
        )
        if recipient is not None:
            stmt = stmt.where(col(Recipient.external_id) == recipient)
        if kind is not None:
            stmt = stmt.where(col(Delivery.kind) == kind)
        if channel is not None:
            stmt = stmt.where(col(Delivery.channel) == channel)
        if status is not None:
            stmt = stmt.where(col(Delivery.status) == status)
        with self.sessions() as session:
            rows = session.execute(stmt).all()
        return [
            DeliveryRecord(
                id=d.id or 0,
                recipient=external_id,
                kind=d.kind,
                channel=d.channel,
                local_date=d.local_date,
                occurrence_at=d.occurrence_at,
                scheduled_at=d.scheduled_at,
                status=d.status,
                reason=d.reason,
                attempts=d.attempts,
                sent_at=d.sent_at,
            )
            for d, external_id in rows
        ]

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
        self._idle_state = None
        if top_of_hour and (self._last_planned is None or self._last_planned < now):
            self._last_planned = now
            if self.plan_idle_hours or self._subscriptions_due(now):
                self.run_planner(now)
        self.run_due_jobs(now)

    def _subscriptions_due(self, now: datetime) -> bool:

        horizon_end = now + self.settings.horizon
        with self.sessions() as session:
            found = session.execute(
                select(col(Subscription.id))
                .where(col(Subscription.active).is_(True), col(Subscription.next_at) <= horizon_end)
                .limit(1)
            ).first()
        return found is not None

    def _job_state(self) -> tuple[datetime | None, bool]:
        """(the earliest instant a scheduled job waits for, whether any job is queued), in one round trip."""
        with self.redis.pipeline(transaction=False) as pipe:
            for queue in self._queues:
                pipe.zrange(ScheduledJobRegistry(queue=queue).key, 0, 0, withscores=True)  # type: ignore[no-untyped-call]
                pipe.llen(queue.key)
            answers = pipe.execute()
        scores = [float(first[0][1]) for first in answers[0::2] if first]
        waiting_at = datetime.fromtimestamp(min(scores), UTC) if scores else None
        return waiting_at, any(answers[1::2])

    def next_job_at(self) -> datetime | None:
        """The earliest instant a job waits for in RQ's scheduled registries (None: none waits)."""
        if self.closed:
            return None
        idle, self._idle_state = self._idle_state, None
        if idle is not None:
            return idle[0]
        return self._job_state()[0]

    def run_due_jobs(self, now: datetime | None = None) -> int:
        """Move the scheduled jobs due by ``now`` to their queues and run every queued job.

        Returns how many jobs ran. The clock calls this at every stop.
        """
        at = self.clock.now() if now is None else as_instant(now, "now")
        state = waiting_at, queued = self._job_state()
        if waiting_at is not None and waiting_at <= at:
            self._enqueue_due(at)
            queued = True
        if not queued:
            # Nothing ran, so Redis still looks like this when the clock asks what comes next.
            self._idle_state = state
            return 0
        return self._work_queued()

    def _enqueue_due(self, now: datetime) -> None:
        # What RQ's scheduler does, against the simulated clock instead of the server's.

        connection = self.redis
        cutoff = int(now.timestamp())
        for queue in self._queues:
            registry = ScheduledJobRegistry(queue=queue)  # type: ignore[no-untyped-call]
            while job_ids := registry.get_jobs_to_schedule(cutoff):
                jobs: list[Job | None] = Job.fetch_many(job_ids, connection=connection)
                with connection.pipeline() as pipe:
                    for job_id, job in zip(job_ids, jobs, strict=True):
                        if job is not None:
                            queue.enqueue_job(job, pipeline=pipe)
                        registry.remove(job_id, pipeline=pipe)
                    pipe.execute()

    def _work_queued(self) -> int:

        assert self._worker is not None and self._deliverer is not None
        connection = self.redis
        previous = jobs._deliverer
        jobs.install(self._deliverer)
        ran = 0
        try:
            while (found := Queue.dequeue_any(self._queues, None, connection=connection)) is not None:
                job, queue = found
                self._job_error = None
                self._worker.execute_job(job, queue)
                error, self._job_error = self._job_error, None
                if error is not None:
                    raise JobFailed(
                        f"RQ job {job.id} ({job.description}) raised {type(error).__name__}: {error}"
                    ) from error
                ran += 1
                if ran > MAX_JOBS_PER_INSTANT:
                    raise KitError(
                        f"more than {MAX_JOBS_PER_INSTANT} jobs ran at {self.clock.now().isoformat()} "
                        "without time moving: a job keeps re-enqueueing itself for now"
                    )
        finally:
            jobs.install(previous)
        return ran

    def _remember_job_error(
        self, job: Job, exc_type: type[BaseException], exc: BaseException, tb: Any
    ) -> bool:
        self._job_error = exc
        return False

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("running" if self._app is not None else "not started")
        return f"<PlannerService {state} at {self.clock.now().isoformat()} in {self.directory}>"
