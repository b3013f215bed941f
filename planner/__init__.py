"""Notification planner: decides when each recipient gets each scheduled notification, in their own
local time, and hands the sends to RQ workers and adapter plugins."""
