"""Replaces the relay section of BENCHMARKS.md with the results of scripts/bench-relay."""
import json, sys, datetime, os
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
secs, conc = sys.argv[2], sys.argv[3]
out = ["## Relay throughput (loopback)", "",
       f"Produced by `scripts/bench-relay {secs} {conc}` on {datetime.date.today()} ({os.cpu_count()} cores): a release",
       f"`sotto-relay` process and the `relay-load` generator (`load/src/main.rs`, {conc} concurrent",
       f"keep-alive clients, {secs} s per endpoint) on the same machine, so both share the 2 cores. `/health`",
       "(which also queries the database) is the baseline measured in the same run; compare ratios.", "",
       "| backend | endpoint | req/s | ratio to /health | p50 | p99 | errors |", "|---|---|---|---|---|---|---|"]
for backend in ("sqlite", "postgres"):
    base = next((r["rps"] for r in rows if r.get("backend") == backend and r["endpoint"] == "health"), None)
    for r in rows:
        if r.get("backend") != backend: continue
        ratio = f"{r['rps']/base:.3f}" if base else "-"
        name = {"post_message": "POST /rooms/{id}/messages", "history_page_50": "GET /rooms/{id}/messages (50)"}.get(r["endpoint"], r["endpoint"])
        out.append(f"| {backend} | `{name}` | {r['rps']:.0f} | {ratio} | {r['p50_ms']:.2f} ms | {r['p99_ms']:.2f} ms | {r['errors']} |")
out += ["", "| Argon2id (m = 19 MiB, t = 2, p = 1; the relay's parameters) | hashes/s |", "|---|---|"]
for r in rows:
    if "argon2id_threads" in r:
        out.append(f"| {r['argon2id_threads']} thread(s) | {r['hashes_per_s']:.1f} |")
out += ["", "Login is bounded by Argon2id by design (one hash per attempt, on the blocking pool).",
        "Compare its rate with the 2-thread hash rate: each login also writes a session, a refresh",
        "token and an audit row, and the load generator competes for the same two cores. `/me`",
        "verifies the JWT and loads the session and user in one query per request.", "",
        "Messages: 8 users with one device each share a room; each envelope is sealed ahead of the",
        "timed window (a 900-byte plaintext for two devices, "
        + next((f"{r['envelope_bytes']} bytes" for r in rows if "envelope_bytes" in r), "about 1 KiB")
        + " on the wire before base64). A post is",
        "authenticated, parsed strictly, checked against the route, the token and the sender's",
        "registered device, its Ed25519 signature verified, and stored with the room's next `seq` in",
        "one statement (PostgreSQL: `WITH UPDATE ... RETURNING` locks the room's row while it runs;",
        "SQLite: a single writer, queued in-process, and a trigger). All 32 clients post into the",
        "same room, so every post serializes on that room: this is the worst case for `seq`.",
        "`GET /rooms/{id}/messages` fetches 50 envelopes (about 90 KB of JSON) after a random",
        "`after_seq` in a room holding every message of the post phase; its p50/p99 are the history",
        "fetch latency under the same concurrency.", "",
        "History of this number: the first version (a four-statement transaction per post, and SQLite",
        "writers waiting in SQLite's sleeping busy handler) measured 1056 posts/s on SQLite and 691 on",
        "PostgreSQL with the same command on 2026-11-22; the one-statement store and the in-process",
        "writer queue brought both to about 2000. Repeated runs of the post phase on this machine",
        "vary by about ±25 % (SQLite's WAL grows under the sustained mixed load); compare ratios.", ""]
md = open("BENCHMARKS.md").read()
marker = "## Relay throughput (loopback)"
head = md.split(marker)[0].rstrip() + "\n\n"
# keep anything after the relay section's end (none today)
open("BENCHMARKS.md", "w").write(head + "\n".join(out))
