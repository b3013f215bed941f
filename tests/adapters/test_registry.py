"""`adapter_entry_points` (read from the distributions' files, for `planner --help`) agrees with
importlib.metadata, which loads the adapters."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from adapters import adapter_entry_points, available_adapters


def _from_metadata() -> dict[str, str]:
    return {name: entry_point.value for name, entry_point in available_adapters().items()}


def test_the_bundled_adapters_are_found_as_importlib_metadata_finds_them() -> None:
    found = adapter_entry_points()
    assert found == _from_metadata()
    assert {"capture", "console", "file", "smtp", "twilio"} <= set(found)


def test_a_third_party_plugin_and_a_shadowed_copy_are_read_the_same_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    for folder, dist, value in [
        (first, "Acme_Notify-1.0.dist-info", "acme_notify:Pigeon"),
        (second, "acme.notify-0.9.dist-info", "acme_notify_old:Pigeon"),  # same name, later: ignored
        (second, "other_plugin.egg-info", "other:Fax"),
    ]:
        (folder / dist).mkdir(parents=True)
        name = "fax" if "other" in dist else "pigeon"
        (folder / dist / "entry_points.txt").write_text(
            f"[console_scripts]\nacme = acme:main\n\n[planner.adapters]\n{name} = {value}\n"
        )
    monkeypatch.setattr(sys, "path", [str(first), str(second), *sys.path])
    found = adapter_entry_points()
    assert found == _from_metadata()
    assert found["pigeon"] == "acme_notify:Pigeon"
    assert found["fax"] == "other:Fax"
