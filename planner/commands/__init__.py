"""Commands: what changes the service's state, shared by the CLI, the HTTP API and the dashboard."""
