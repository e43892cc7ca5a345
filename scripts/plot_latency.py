#!/usr/bin/env python3
"""Draws p50 and p99 send-to-receive latency against offered load as an SVG,
from the JSON lines of scripts/bench-ws-latency (no plotting library needed).
   plot_latency.py IN.jsonl OUT.svg TITLE"""
import json
import math
import sys

src, dst, title = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [json.loads(l) for l in open(src) if l.strip().startswith("{")]
rows = [r for r in rows if r.get("endpoint") == "ws_rate"]
rows.sort(key=lambda r: r["offered_per_s"])
if not rows:
    sys.exit("no ws_rate rows")

W, H, L, R, T, B = 720, 440, 70, 20, 50, 60
xs = [r["offered_per_s"] for r in rows]
series = [("p50", "#1f77b4", [r["recv_p50_ms"] for r in rows]),
          ("p99", "#d62728", [r["recv_p99_ms"] for r in rows])]
xmax = max(xs) * 1.05
# Log scale on y: latencies span from milliseconds to seconds.
ally = [max(v, 0.1) for _, _, vs in series for v in vs] + [50.0]
ymin = 10 ** math.floor(math.log10(min(ally)))
ymax = 10 ** math.ceil(math.log10(max(ally)))


def px(x):
    return L + (W - L - R) * x / xmax


def py(y):
    y = max(y, ymin)
    return T + (H - T - B) * (1 - (math.log10(y) - math.log10(ymin)) / (math.log10(ymax) - math.log10(ymin)))


out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{W/2}" y="24" text-anchor="middle" font-size="14">{title}</text>']
d = ymin
while d <= ymax * 1.0001:
    y = py(d)
    out.append(f'<line x1="{L}" x2="{W-R}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
    out.append(f'<text x="{L-6}" y="{y+4:.1f}" text-anchor="end">{d:g} ms</text>')
    d *= 10
step = 1000 if xmax > 3000 else 500
x = 0
while x <= xmax:
    out.append(f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{T}" y2="{H-B}" stroke="#eee"/>')
    out.append(f'<text x="{px(x):.1f}" y="{H-B+16}" text-anchor="middle">{x}</text>')
    x += step
out.append(f'<text x="{(L+W-R)/2}" y="{H-18}" text-anchor="middle">offered load (messages/s)</text>')
# The target: p99 at most 50 ms at 5,000 msgs/s.
out.append(f'<line x1="{L}" x2="{W-R}" y1="{py(50):.1f}" y2="{py(50):.1f}" stroke="#2ca02c" stroke-dasharray="6,4"/>')
out.append(f'<text x="{W-R-4}" y="{py(50)-4:.1f}" text-anchor="end" fill="#2ca02c">50 ms</text>')
for i, (name, color, vs) in enumerate(series):
    pts = " ".join(f"{px(x):.1f},{py(v):.1f}" for x, v in zip(xs, vs))
    out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"/>')
    for x, v in zip(xs, vs):
        out.append(f'<circle cx="{px(x):.1f}" cy="{py(v):.1f}" r="3" fill="{color}"/>')
    out.append(f'<text x="{L+10}" y="{T+16+16*i}" fill="{color}">{name}</text>')
out.append(f'<line x1="{L}" x2="{L}" y1="{T}" y2="{H-B}" stroke="black"/>')
out.append(f'<line x1="{L}" x2="{W-R}" y1="{H-B}" y2="{H-B}" stroke="black"/>')
out.append("</svg>")
open(dst, "w").write("\n".join(out) + "\n")
