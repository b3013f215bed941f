"""The Core tables behind the models, typed: the one way code below the ORM reaches a table.

``select(Delivery)`` gives ORM objects; bulk statements (inserts of a chunk, conditional updates)
work on these tables, whose columns are typed, unlike the model attributes in ``select``.
"""

from __future__ import annotations

from sqlalchemy import Table
from sqlmodel import SQLModel

from planner.store.models import (
    AdhocKey,
    ApiToken,
    AuditEntry,
    DashboardSession,
    DeadLetterDay,
    Delivery,
    DeliveryEvent,
    DeliveryMessage,
    DigestDrop,
    DigestEvent,
    EngagementEvent,
    IdempotencyKey,
    MaintenanceState,
    Pause,
    PlannerRun,
    ProviderEvent,
    Recipient,
    Subscription,
)
from planner.store.webhook_models import WebhookAttempt, WebhookEndpoint, WebhookMessage


def table_of(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


ADHOC_KEYS = table_of(AdhocKey)
API_TOKENS = table_of(ApiToken)
AUDIT = table_of(AuditEntry)
DASHBOARD_SESSIONS = table_of(DashboardSession)
DEAD_LETTER_DAYS = table_of(DeadLetterDay)
IDEMPOTENCY = table_of(IdempotencyKey)
MAINTENANCE_STATE = table_of(MaintenanceState)
DELIVERIES = table_of(Delivery)
DELIVERY_EVENTS = table_of(DeliveryEvent)
DELIVERY_MESSAGES = table_of(DeliveryMessage)
DIGEST_DROPS = table_of(DigestDrop)
DIGEST_EVENTS = table_of(DigestEvent)
ENGAGEMENT = table_of(EngagementEvent)
PAUSES = table_of(Pause)
PROVIDER_EVENTS = table_of(ProviderEvent)
RECIPIENTS = table_of(Recipient)
RUNS = table_of(PlannerRun)
SUBSCRIPTIONS = table_of(Subscription)
WEBHOOK_ATTEMPTS = table_of(WebhookAttempt)
WEBHOOK_ENDPOINTS = table_of(WebhookEndpoint)
WEBHOOK_MESSAGES = table_of(WebhookMessage)
