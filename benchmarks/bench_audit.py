"""`audit verify` and `status` at a million events, against a raw read-and-hash baseline.

    python benchmarks/bench_audit.py [--events N] [--repeat R]

Builds one SQLite state database (migrated, as the tool makes it) holding N
chained events shaped like real ones (hashes computed as ``audit.record``
would), then times, median of R runs each, alternating:

- baseline: sqlite3 reads every event's columns in order and SHA-256s them
  (the irreducible work of a verification: one read, one hash per event);
- `audit verify`: ``audit.verify`` (the canonical encoding, the links, the hashes);
- `status`: ``audit.verify_since_checkpoint`` after one more event (the morning screen).

Prints events per second and the tool/raw ratio. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from erasure import audit  # noqa: E402
from erasure.state import open_state  # noqa: E402


def build(path: Path, n: int) -> None:
    state = open_state(f"sqlite:///{path}")
    state.close()
    conn = sqlite3.connect(path)
    prev = audit.GENESIS
    start = dt.datetime(2026, 1, 1)
    rows = []
    for seq in range(1, n + 1):
        at = start + dt.timedelta(seconds=seq)
        data = json.dumps({"counts": {"views": seq % 17, "view_events": seq % 51}, "total": seq % 68},
                          sort_keys=True, separators=(",", ":"))
        fields = dict(seq=seq, actor="system", event="erased", request_ref=f"ER-2026-{seq:06d}", tenant="acme",
                      reason=None, data=data, prev_hash=prev)
        digest = hashlib.sha256(audit.fast_canonical(at_text=at.isoformat(timespec="microseconds") + "Z",
                                                     **fields)).hexdigest()
        rows.append((seq, at.strftime("%Y-%m-%d %H:%M:%S.%f"), "system", "erased", fields["request_ref"], "acme",
                     None, data, prev, digest))
        prev = digest
        if len(rows) == 50_000:
            conn.executemany("INSERT INTO audit_events (seq, at, actor, event, request_ref, tenant, reason, data, "
                             "prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
            rows.clear()
    conn.executemany("INSERT INTO audit_events (seq, at, actor, event, request_ref, tenant, reason, data, "
                     "prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
    conn.commit()
    conn.close()


def raw(path: Path) -> int:
    conn = sqlite3.connect(path)
    n = 0
    for row in conn.execute("SELECT seq, at, actor, event, request_ref, tenant, reason, data, prev_hash, hash "
                            "FROM audit_events ORDER BY seq"):
        hashlib.sha256("\x1f".join(map(str, row)).encode()).hexdigest()
        n += 1
    conn.close()
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="erasure-bench-audit-") as d:
        path = Path(d) / "state.db"
        t0 = time.perf_counter()
        build(path, args.events)
        print(f"built {args.events:,} events in {time.perf_counter() - t0:.1f}s")
        state = open_state(f"sqlite:///{path}")
        t_raw, t_tool, t_status = [], [], []
        for i in range(args.repeat):
            t0 = time.perf_counter()
            assert raw(path) == args.events + i
            t_raw.append(time.perf_counter() - t0)
            with state.session() as session:
                t0 = time.perf_counter()
                result = audit.verify(session)
                t_tool.append(time.perf_counter() - t0)
            assert result.ok and result.events == args.events + i, result
            with state.session() as session:
                audit.record(session, "bench", now=dt.datetime.now(dt.timezone.utc))
            with state.session() as session:
                t0 = time.perf_counter()
                checked, _ = audit.verify_since_checkpoint(session)
                t_status.append(time.perf_counter() - t0)
            assert checked.ok
        state.close()
    raw_s, tool_s, status_s = (statistics.median(t) for t in (t_raw, t_tool, t_status))
    print(f"raw read + hash : {raw_s:7.2f}s  {args.events / raw_s:,.0f} events/s")
    print(f"audit verify    : {tool_s:7.2f}s  {args.events / tool_s:,.0f} events/s  ratio {tool_s / raw_s:.2f}")
    print(f"status (from the checkpoint): {status_s * 1000:.1f} ms")


if __name__ == "__main__":
    main()
