"""``python -m planner.cli``: the same command line as ``planner``."""

from planner.cli import main

main()
