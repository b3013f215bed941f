"""Where message templates live and which files a channel needs: no Jinja here.

``planner run`` only asks whether each subscribed kind has its files, to warn before the sends
fail; answering that from the file system keeps Jinja (loaded by the worker to render) out of the
run's start-up.
"""

from __future__ import annotations

from pathlib import Path

BUILTIN = Path(__file__).resolve().parent.parent / "templates"

#: The files a channel needs; an email may also have ``email.html``.
REQUIRED = {"email": ("email_subject.txt", "email.txt"), "sms": ("sms.txt",)}


def template_folders(extra_dir: Path | None) -> list[Path]:
    """The folders searched in order: the operator's, then the bundled ones (as the renderer does)."""
    return ([extra_dir] if extra_dir is not None else []) + [BUILTIN]


def has_template_files(folders: list[Path], kind: str, channel: str) -> bool:
    """Whether every file ``channel`` needs for ``kind`` exists in one of ``folders``."""
    return all(
        any((folder / kind / leaf).is_file() for folder in folders) for leaf in REQUIRED.get(channel, ("?",))
    )
