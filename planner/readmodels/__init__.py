"""Read models: what the CLI, the HTTP API and the dashboard show, returned as data (they render it)."""
