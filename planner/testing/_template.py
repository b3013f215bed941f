"""A migrated SQLite file per process, copied for every new kit database.

Running the migrations costs a few hundred milliseconds per database (Alembic loads and runs
every revision); copying a migrated file costs a few. The template is made on first use in a
temporary directory of its own and removed when the interpreter exits. SQLite's backup API makes
the copy (:func:`planner.store.db.copy_sqlite_file`), so a write-ahead log the template may still
have is part of it.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
from pathlib import Path

from planner.store.db import copy_sqlite_file, create_db_engine, upgrade

_lock = threading.Lock()
_template: Path | None = None


def _migrated_template() -> Path:
    global _template
    with _lock:
        if _template is None:
            directory = Path(tempfile.mkdtemp(prefix="planner-template-"))
            atexit.register(shutil.rmtree, directory, ignore_errors=True)
            path = directory / "planner.db"
            engine = create_db_engine(f"sqlite:///{path}")
            try:
                upgrade(engine)
            finally:
                engine.dispose()
            _template = path
        return _template


def copy_migrated_sqlite(target: Path) -> None:
    """Make ``target``, which must not exist yet, a migrated and empty SQLite database."""
    if target.exists():
        raise FileExistsError(f"{target} exists: a migrated copy goes to a new file only")
    target.parent.mkdir(parents=True, exist_ok=True)
    copy_sqlite_file(_migrated_template(), target)
