"""Generated from ``planner.settings.Settings`` by ``python -m planner.cli.help_text``;
do not edit (tests/cli/test_cli_help.py fails when it is out of date)."""

#: (field, default as shown, description) for each setting, in declaration order.
SETTINGS: tuple[tuple[str, str, str], ...] = (
    (
        "database_url",
        "sqlite:///./planner.db",
        "SQLAlchemy URL; a SQLite file by default, postgresql+psycopg://... for PostgreSQL.",
    ),
    ("redis_url", "unset", "Redis server URL; unset starts an embedded Redis beside the SQLite file."),
    ("db_pool_size", "8", "Connections in the database pool."),
    (
        "sqlite_synchronous",
        "full",
        "SQLite only: 'full' makes every commit durable before it returns (a power loss cannot undo a recorded send); 'normal' is several times faster per commit but a power loss can roll back the last commits, and their messages are sent again.",
    ),
    ("plan_chunk_size", "1000", "Due subscriptions planned per chunk."),
    ("plan_concurrency", "4", "Chunks planned at once (bounded by the pool)."),
    ("horizon", "1h", "How far past now a run plans."),
    ("max_lateness", "4h", "Older occurrences are recorded missed."),
    ("max_lateness_by_kind", "{}", 'Per-kind lateness, JSON, e.g. {"password_reset": "15m"}.'),
    (
        "max_delivery_wait",
        "15m",
        "A due delivery no worker took for longer makes readiness fail (/readyz, status).",
    ),
    ("quiet_hours_sms", "21:00-08:00", "Default SMS quiet hours, local 'HH:MM-HH:MM'."),
    ("quiet_hours_email", "unset", "Default email quiet hours; empty means none."),
    ("cap_email", "10/day", "Frequency cap per recipient for email (limits notation)."),
    ("cap_sms", "3/day", "Frequency cap per recipient for SMS (limits notation)."),
    ("caps_by_kind", "{}", 'Per-kind caps, JSON, e.g. {"reminder": {"sms": "1/day"}}.'),
    (
        "backoff_tiers",
        "[[0, 1], [3, 2], [7, 3], [14, 7], [30, 14]]",
        "Engagement backoff, JSON: [[inactive at least N days, send every M days], ...].",
    ),
    ("backoff_tiers_by_kind", "{}", "Per-kind backoff tiers, JSON, same shape."),
    ("kind_queues", "{}", 'Queue per kind, JSON, e.g. {"password_reset": "high"}.'),
    (
        "critical_kinds",
        "[]",
        "Kinds bypassing quiet hours and caps: a comma list (password_reset,login_code) or JSON.",
    ),
    ("email_adapter", "file", "Adapter plugin for email (smtp, file, console, ...)."),
    ("sms_adapter", "file", "Adapter plugin for SMS (twilio, file, console, ...)."),
    ("outbox_dir", "outbox", "Where the file adapter writes."),
    ("templates_dir", "unset", "Extra message templates, searched first."),
    ("rate_limit_email", "100/second", "Provider throughput limit for email."),
    ("rate_limit_sms", "10/second", "Provider throughput limit for SMS."),
    ("max_attempts", "5", "Send attempts before a delivery is dead."),
    ("retry_base", "30s", "First retry delay."),
    ("retry_cap", "1h", "Longest retry delay."),
    (
        "sending_lease",
        "1m",
        "A worker's hold on a delivery it sends, renewed while it lives: a dead worker's deliveries are recovered this long after it died. At least twice the adapters' timeouts plus PLANNER_MAX_CLOCK_SKEW.",
    ),
    (
        "max_clock_skew",
        "5s",
        "How far the hosts' clocks may disagree: a worker never starts a provider call with less than the adapter's timeout plus this left on its lease.",
    ),
    (
        "unknown_outcome_delay",
        "15m",
        "After a provider took a message but gave no answer, the one further attempt waits at least this long (and looks the message up first where the provider allows).",
    ),
    ("delivery_batch_size", "100", "Deliveries carried by one RQ job."),
    ("digest_max_events", "50", "Events listed in a digest's template; the rest are only counted."),
    ("digest_retention", "30d", "Digest events older than this are dropped (and counted)."),
    (
        "provider_event_retention",
        "7d",
        "Applied provider callbacks are remembered this long (repeats change nothing).",
    ),
    (
        "delivery_retention",
        "90d",
        "Deliveries in a final state (sent, skipped, suppressed, missed, cancelled, dead) due longer ago than this are pruned with their timelines; open ones never are. At least the longest PLANNER_MAX_LATENESS, plus the longest cap window or backoff interval, plus 2 days (a pruned delivery changes no decision). On PostgreSQL whole months are dropped, once all of a month is this old.",
    ),
    ("audit_retention", "365d", "Audit log entries older than this are pruned."),
    (
        "engagement_retention",
        "365d",
        "Engagement events older than this are pruned, except each recipient's latest (engagement backoff reads only that one).",
    ),
    (
        "run_retention",
        "90d",
        "Planner run records (and the digest drop counts, folded into one row) older than this are pruned.",
    ),
    ("prune_batch_size", "1000", "Rows pruned per transaction (each batch commits on its own)."),
    ("api_token", "unset", "An admin token for the HTTP API, named 'api-token' (see `planner tokens`)."),
    (
        "public_base_url",
        "unset",
        "The service's public URL (https://planner.example.com): unsubscribe links and provider callbacks are built on it. Required with the smtp adapter.",
    ),
    (
        "signing_secret",
        "unset",
        "A random key (32 bytes or more) signing unsubscribe links and, through keys derived from it per purpose, the dashboard's sessions and forms (HMAC-SHA256). Required with the smtp adapter. Unset: `planner serve` signs dashboard sessions with a key made at start, which only that process knows, until it stops.",
    ),
    (
        "previous_signing_secrets",
        "[]",
        "Earlier values of PLANNER_SIGNING_SECRET, still accepted when checking a signature (never used to sign): a comma list or JSON. Rotate by moving the old secret here.",
    ),
    ("ui_idle_timeout", "30m", "A dashboard session unused this long ends: sign in again."),
    ("ui_session_lifetime", "12h", "A dashboard session ends this long after sign-in, used or not."),
    (
        "http_header_timeout",
        "10s",
        "`planner serve` closes a connection (408) whose request headers are not complete this long after it opened or after its previous answer.",
    ),
    (
        "twilio_auth_token",
        "unset",
        "The Twilio account's auth token (also the twilio adapter's): it signs Twilio's callbacks (X-Twilio-Signature). Unset: the Twilio webhooks answer 503.",
    ),
    (
        "mailgun_signing_key",
        "unset",
        "Mailgun's HTTP webhook signing key. Unset: /v1/webhooks/mailgun answers 503.",
    ),
    (
        "unsubscribe_mailto",
        "unset",
        "An address for mailto: unsubscribes, added to List-Unsubscribe when set.",
    ),
    ("log_format", "auto", "Logs: JSON lines, readable console lines, or auto (console on a terminal)."),
    ("log_level", "INFO", "DEBUG, INFO, WARNING or ERROR."),
)

#: (channels as shown, option names) of each bundled adapter, by entry-point value.
ADAPTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "adapters.capture:CaptureAdapter": ("email, sms", ()),
    "adapters.console:ConsoleAdapter": ("email, sms", ("stream",)),
    "adapters.file:FileAdapter": ("email, sms", ("directory",)),
    "adapters.smtp:SmtpAdapter": (
        "email",
        ("from_address", "host", "local_hostname", "password", "port", "security", "timeout", "username"),
    ),
    "adapters.twilio:TwilioAdapter": (
        "sms",
        (
            "account_sid",
            "auth_token",
            "base_url",
            "from_number",
            "messaging_service_sid",
            "status_callback",
            "timeout",
        ),
    ),
}
