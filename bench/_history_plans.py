"""``history_bench``'s query plans: every statement a measured run sent, ``EXPLAIN``-ed on its database,
reduced to a signature (node types, tables and indexes, partitions named by their table), and
compared between the empty and the history database."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

#: Tables a hot path must never read whole: they grow with the history.
GROWING = ("delivery", "delivery_event", "engagement_event", "audit_log", "adhoc_key")
#: A sequential scan of a table this small is the planner's right choice, not a defect.
SMALL_TABLE = 50_000
_PARTITION = re.compile(r"^(delivery|delivery_event)_(p\d{4}_\d{2}|default)")
_SKIP = re.compile(
    r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|PRAGMA|SET|SHOW|LOCK|CREATE|DROP|ALTER|SELECT pg_)", re.I
)


def record_statements(engine: Any) -> dict[str, tuple[str, Any, bool]]:
    """The first (statement, parameters, executemany) of every distinct statement sent from now on."""
    from sqlalchemy import event

    seen: dict[str, tuple[str, Any, bool]] = {}

    def before(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        key = " ".join(statement.split())
        if key not in seen and not _SKIP.match(key) and not key.upper().startswith("EXPLAIN"):
            seen[key] = (statement, parameters, executemany)

    event.listen(engine, "before_cursor_execute", before)
    return seen


def _table(name: str | None) -> str | None:
    return None if name is None else _PARTITION.sub(r"\1_*", name)


def _pg_signature(node: dict[str, Any], sizes: dict[str, float], scans: list[str]) -> str:
    kind = node["Node Type"]
    relation = _table(node.get("Relation Name"))
    index = _table(node.get("Index Name"))
    big = sizes.get(node.get("Relation Name") or "", 0) > SMALL_TABLE
    if kind == "Seq Scan" and relation and relation.split("_*")[0] in GROWING and big:
        scans.append(f"Seq Scan on {node['Relation Name']} ({sizes[node['Relation Name']]:,.0f} rows)")
    text = kind + (f" {index}" if index else "") + (f" on {relation}" if relation else "")
    children = node.get("Plans", [])
    if kind in ("Append", "Merge Append") and children:
        # One child per partition: the same plan each, whatever the number of months.
        child = sorted({_pg_signature(c, sizes, scans) for c in children})
        return f"{text} [{' | '.join(child)}]"
    if children:
        return f"{text} ({', '.join(_pg_signature(c, sizes, scans) for c in children)})"
    return text


def _explain_pg(raw: Any, statement: str, parameters: Any) -> tuple[str, list[str]]:
    with raw.cursor() as cur:
        cur.execute("SELECT relname, reltuples FROM pg_class WHERE relkind = 'r'")
        sizes = dict(cur.fetchall())
        cur.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
        plan = cur.fetchone()[0][0]["Plan"]
    scans: list[str] = []
    return _pg_signature(plan, sizes, scans), scans


def _explain_sqlite(raw: Any, statement: str, parameters: Any) -> tuple[str, list[str]]:
    cur = raw.cursor()
    rows = cur.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
    details = [str(row[-1]) for row in rows]
    scans = [d for d in details if re.match(rf"^SCAN ({'|'.join(GROWING)})( AS \w+)?$", d)]
    return " / ".join(details), scans


def explain_all(engine: Any, recorded: dict[str, tuple[str, Any, bool]]) -> dict[str, dict[str, Any]]:
    """Each recorded statement's plan signature and the large tables it reads sequentially."""
    plans: dict[str, dict[str, Any]] = {}
    raw = engine.raw_connection()
    try:
        postgres = engine.dialect.name == "postgresql"
        for key, (statement, parameters, executemany) in recorded.items():
            params = parameters[0] if executemany and parameters else parameters
            try:
                if postgres:
                    signature, scans = _explain_pg(raw.driver_connection, statement, params)
                else:
                    signature, scans = _explain_sqlite(raw.driver_connection, statement, params)
            except Exception as exc:  # a statement EXPLAIN cannot take alone (a temporary table's)
                signature, scans = f"(not explained: {type(exc).__name__})", []
            finally:
                raw.driver_connection.rollback()
            # Shortened for the report, with a digest of the whole: statements that share a long
            # column list (a delivery's every column) stay apart.
            digest = hashlib.sha1(key.encode()).hexdigest()[:10]
            plans[f"{key[:300]} … #{digest}"] = {"plan": signature, "scans": scans}
    finally:
        raw.close()
    return plans


def compare_plans(backend: str, built: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """The statements whose plan differs between the empty and the history database, and those whose
    history plan reads a large table sequentially."""
    empty = json.loads((workdir / f"statements-{backend}-empty.json").read_text())
    history = json.loads((workdir / f"statements-{backend}-history.json").read_text())
    changed = [
        {"statement": key, "empty": empty[key]["plan"], "history": plan["plan"]}
        for key, plan in history.items()
        if key in empty and empty[key]["plan"] != plan["plan"]
    ]
    scans = [{"statement": key, "scans": plan["scans"]} for key, plan in history.items() if plan["scans"]]
    return {"statements": len(history), "changed": changed, "scans": scans}
