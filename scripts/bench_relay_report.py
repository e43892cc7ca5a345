"""Replaces the relay section of BENCHMARKS.md with the results of scripts/bench-relay."""
import json, sys, datetime, os
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
secs, conc = sys.argv[2], sys.argv[3]
out = ["## Relay throughput (loopback)", "",
       f"Produced by `scripts/bench-relay {secs} {conc}` on {datetime.date.today()} ({os.cpu_count()} cores): a release",
       f"`sotto-relay` process and the `relay-load` generator (`tests/src/bin/relay-load.rs`, {conc} concurrent",
       f"keep-alive clients, {secs} s per endpoint) on the same machine, so both share the 2 cores. `/health`",
       "(which also queries the database) is the baseline measured in the same run; compare ratios.", "",
       "| backend | endpoint | req/s | ratio to /health | p50 | p99 | errors |", "|---|---|---|---|---|---|---|"]
for backend in ("sqlite", "postgres"):
    base = next((r["rps"] for r in rows if r.get("backend") == backend and r["endpoint"] == "health"), None)
    for r in rows:
        if r.get("backend") != backend: continue
        ratio = f"{r['rps']/base:.3f}" if base else "-"
        out.append(f"| {backend} | `{r['endpoint']}` | {r['rps']:.0f} | {ratio} | {r['p50_ms']:.2f} ms | {r['p99_ms']:.2f} ms | {r['errors']} |")
out += ["", "| Argon2id (m = 19 MiB, t = 2, p = 1; the relay's parameters) | hashes/s |", "|---|---|"]
for r in rows:
    if "argon2id_threads" in r:
        out.append(f"| {r['argon2id_threads']} thread(s) | {r['hashes_per_s']:.1f} |")
out += ["", "Login is bounded by Argon2id by design (one hash per attempt, on the blocking pool).",
        "Compare its rate with the 2-thread hash rate: each login also writes a session, a refresh",
        "token and an audit row, and the load generator competes for the same two cores. `/me`",
        "verifies the JWT and loads the session and user in one query per request.", ""]
md = open("BENCHMARKS.md").read()
marker = "## Relay throughput (loopback)"
head = md.split(marker)[0].rstrip() + "\n\n"
# keep anything after the relay section's end (none today)
open("BENCHMARKS.md", "w").write(head + "\n".join(out))
