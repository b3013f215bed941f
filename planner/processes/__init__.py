"""Long-running processes: the worker and the hourly cron."""
