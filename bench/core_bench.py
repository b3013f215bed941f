"""Pure-core micro-benchmark: ``resolve_detailed`` over the triples a planner run asks for.

100,000 (local date, wall time, zone) requests over 52 zones and quarter-hour wall times, as a run
of 100,000 due occurrences asks them; prints CPU microseconds per call as JSON.

    .venv/bin/python bench/core_bench.py
"""

from __future__ import annotations

import json
import random
import sys
import time
from datetime import date
from datetime import time as wall
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    from planner.core.localtime import available_zones, resolve_detailed

    zones = sorted(available_zones())[:52]
    rng = random.Random(1)
    triples = [
        (date(2026, 3, 16), wall(rng.randrange(24), rng.choice((0, 15, 30, 45))), rng.choice(zones))
        for _ in range(100_000)
    ]
    started = time.process_time()
    for local_date, wall_time, zone in triples:
        resolve_detailed(local_date, wall_time, zone)
    per_call = (time.process_time() - started) / len(triples) * 1e6
    print(json.dumps({"calls": len(triples), "resolve_detailed_cpu_us_per_call": round(per_call, 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
