"""Delivery adapter plugins (email, SMS) and the protocol the planner uses to drive them.

Deliberately independent of the ``planner`` package so third-party adapters can depend on
this protocol alone.
"""

from adapters.base import (
    CHANNELS,
    Adapter,
    BatchingAdapter,
    Channel,
    LookupAdapter,
    Message,
    SendResult,
    batch_session,
    call_deadline,
    can_lookup,
    check_channel,
)
from adapters.deadline import Deadline
from adapters.errors import AdapterConfigError, AdapterError, OutcomeUnknown, PermanentError, TransientError
from adapters.options import options_from_env, setting_name
from adapters.registry import (
    ENTRY_POINT_GROUP,
    adapter_entry_points,
    available_adapters,
    create_adapter,
    load_adapter_class,
)

__all__ = [
    "CHANNELS",
    "ENTRY_POINT_GROUP",
    "Adapter",
    "AdapterConfigError",
    "AdapterError",
    "BatchingAdapter",
    "Channel",
    "Deadline",
    "LookupAdapter",
    "Message",
    "OutcomeUnknown",
    "PermanentError",
    "SendResult",
    "TransientError",
    "adapter_entry_points",
    "available_adapters",
    "batch_session",
    "call_deadline",
    "can_lookup",
    "check_channel",
    "create_adapter",
    "load_adapter_class",
    "options_from_env",
    "setting_name",
]
