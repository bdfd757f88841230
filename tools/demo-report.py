#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The end of tools/demo: the side-by-side table, the SVG chart and the JSON
result, from what the demo recorded during the race.

Per pod it reads two files:
  samples  one line per 250 ms sample, taken inside the pod:
           "unix_ms entries drop early_drop insert_failed"
           (the counters summed over CPUs, since the namespace was made)
  load     tpin-load's output: JSON progress lines ("type":"progress", running
           totals) and its final result ("type":"result")
Standard library only, so a fresh Debian machine needs nothing more.
"""

import argparse
import json
import math
import sys
from xml.sax.saxutils import escape

# The pods, in the demo's order: both directions NATed (Istio's default);
# inbound TPROXY with outbound NAT (Istio's TPROXY mode); tpin, TPROXY both
# ways. A label's first word names its line in the chart.
LABEL = {"redirect": "REDIRECT", "istio": "Istio-TPROXY", "tpin": "tpin"}
COLOR = {"redirect": "#c0392b", "istio": "#d68910", "tpin": "#1f6fb4"}


def read_samples(path):
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 5 and all(p.isdigit() for p in parts):
                rows.append([int(p) for p in parts])
    return rows


def read_load(path):
    progress, result = [], None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            obj = json.loads(line)
            if obj.get("type") == "progress":
                progress.append(obj)
            elif obj.get("type") == "result":
                result = obj
    if result is None:
        sys.exit(f"demo-report: no result from tpin-load in {path}")
    return progress, result


def summarize(mode, samples, result, ct_max, table_full_lines, pod_lines, setup):
    first = samples[0] if samples else [0, 0, 0, 0, 0]
    last = samples[-1] if samples else first
    peak = max((s[1] for s in samples), default=0)
    drops = last[2] - first[2]
    if table_full_lines < 0:
        logged = None
    elif pod_lines is not None:
        logged = pod_lines > 0
    else:
        # Older kernels name no namespace in the message: it belongs to the
        # pod whose own drop counter rose during the race.
        logged = table_full_lines > 0 and drops > 0
    lat = result.get("latency_ms", {})
    return {
        "mode": mode,
        "label": LABEL.get(mode, mode),
        "setup": setup,
        "started": result["started"],
        "ok": result["ok"],
        "failed": result["failed"],
        "timeout": result["timeout"],
        "refused": result["refused"],
        "reset": result["reset"],
        "empty": result["empty"],
        "error": result["error"],
        "errors": result.get("errors", {}),
        "peak_entries": peak,
        "final_entries": last[1],
        "filled": peak >= ct_max * 0.95 or drops > 0,
        "drops": drops,
        "early_drops": last[3] - first[3],
        "insert_failed": last[4] - first[4],
        "table_full_logged": logged,
        "table_full_lines": pod_lines,
        "latency_p50_ms": lat.get("p50", 0),
        "latency_p99_ms": lat.get("p99", 0),
        "latency_max_ms": lat.get("max", 0),
        "samples": len(samples),
    }


def print_table(pods, args):
    modes = list(pods)
    width = 16

    def row(name, values):
        print(f"   {name:<32}" + "".join(f"{v:>{width}}" for v in values))

    def logged(p):
        v, n = p["table_full_logged"], p["table_full_lines"]
        if v is None:
            return "unknown"
        return ("yes" if v else "no") + (f" ({n} lines)" if n else "")

    row("", [LABEL[m] for m in modes])
    row("requests started", [pods[m]["started"] for m in modes])
    row("  answered (ok)", [pods[m]["ok"] for m in modes])
    row("  failed", [pods[m]["failed"] for m in modes])
    row("  timed out / refused / reset",
        [f"{pods[m]['timeout']} / {pods[m]['refused']} / {pods[m]['reset']}" for m in modes])
    others = [pods[m]["empty"] + pods[m]["error"] for m in modes]
    if any(others):
        row("  no answer / other errors", [f"{pods[m]['empty']} / {pods[m]['error']}" for m in modes])
    row("peak conntrack entries", [f"{pods[m]['peak_entries']} / {args.ct_max}" for m in modes])
    row("conntrack entries at the end", [pods[m]["final_entries"] for m in modes])
    row("packets dropped (stat drop)", [pods[m]["drops"] for m in modes])
    row("early drops / insert failed",
        [f"{pods[m]['early_drops']} / {pods[m]['insert_failed']}" for m in modes])
    row('kernel logged "table full"', [logged(pods[m]) for m in modes])
    row("latency of ok, p50 / p99 (ms)",
        [f"{pods[m]['latency_p50_ms']:.1f} / {pods[m]['latency_p99_ms']:.1f}" for m in modes])
    if args.table_full_lines >= 0:
        print(f"   (dmesg: {args.table_full_lines} \"nf_conntrack: table full, dropping packet\" "
              "lines during the race, rate-limited by the kernel)")


def nice_step(span, ticks=5):
    if span <= 0:
        return 1
    raw = span / ticks
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def fmt(v):
    return f"{v:g}" if v < 10000 else f"{v / 1000:g}k"


def panel(out, x0, y0, w, h, tmax, ymax, series, ylabel, hline=None, vline=None):
    """One chart panel: frame, ticks, grid, lines. series: [(mode, [(t, v)])]."""
    ymax = max(ymax, 1)
    ystep = nice_step(ymax)
    ytop = math.ceil(ymax / ystep) * ystep
    xstep = nice_step(tmax, 8)

    def px(t):
        return x0 + w * t / tmax

    def py(v):
        return y0 + h - h * v / ytop

    out.append(f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="#fff" stroke="#333"/>')
    v = 0.0
    while v <= ytop + 1e-9:
        y = py(v)
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + w}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end">{fmt(v)}</text>')
        v += ystep
    t = 0.0
    while t <= tmax + 1e-9:
        x = px(t)
        out.append(f'<line x1="{x:.1f}" y1="{y0 + h}" x2="{x:.1f}" y2="{y0 + h + 5}" stroke="#333"/>')
        out.append(f'<text x="{x:.1f}" y="{y0 + h + 18}" text-anchor="middle">{fmt(t)}</text>')
        t += xstep
    yl = y0 + h / 2
    out.append(f'<text x="{x0 - 52}" y="{yl}" text-anchor="middle" '
               f'transform="rotate(-90 {x0 - 52} {yl})">{escape(ylabel)}</text>')
    if hline is not None:
        value, text = hline
        y = py(value)
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + w}" y2="{y:.1f}" stroke="#555" '
                   'stroke-dasharray="6 4"/>')
        # Below the line: the lines' own labels sit above their ends.
        out.append(f'<text x="{x0 + w - 6}" y="{y + 16:.1f}" text-anchor="end" fill="#555">'
                   f'{escape(text)}</text>')
    if vline is not None:
        value, text = vline
        x = px(value)
        out.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y0 + h}" stroke="#888" '
                   'stroke-dasharray="2 4"/>')
        # Left of the line: the lines' end labels crowd its right.
        out.append(f'<text x="{x - 4:.1f}" y="{y0 + 14}" text-anchor="end" fill="#666">'
                   f'{escape(text)}</text>')
    # Each line is named where it ends, so the panel reads without the legend;
    # labels that would overlap are moved apart.
    used = []
    for mode, pts in series:
        if not pts:
            continue
        d = " ".join(f"{px(min(t, tmax)):.1f},{py(v):.1f}" for t, v in pts)
        out.append(f'<polyline points="{d}" fill="none" stroke="{COLOR[mode]}" stroke-width="2.2"/>')
        t, v = pts[-1]
        x, y = min(px(t), x0 + w - 150), py(v) - 7
        while any(abs(y - u) < 15 for u in used):
            y -= 15
        used.append(y)
        out.append(f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="start" fill="{COLOR[mode]}" '
                   f'font-weight="bold">{escape(LABEL[mode].split()[0])}: {fmt(v)}</text>')


def write_svg(path, pods, series, args):
    W, H = 960, 640
    left, right = 90, 30
    pw = W - left - right
    tmax = max([t for m in series for kind in series[m] for t, _ in series[m][kind]] + [1])
    tmax = math.ceil(tmax / nice_step(tmax, 8)) * nice_step(tmax, 8)
    stop = (args.duration, "new requests stop")
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="#fafafa"/>',
           f'<text x="{W / 2}" y="26" text-anchor="middle" font-size="17" font-weight="bold">'
           'The same load through REDIRECT, Istio-TPROXY and tpin, conntrack table held small</text>',
           f'<text x="{W / 2}" y="46" text-anchor="middle" fill="#444">'
           f'{args.rate} requests/s to each pod for {args.duration} s, each one a call to a backend '
           f'too; nf_conntrack_max = {args.ct_max}, a request fails after {args.timeout} s</text>']
    # Legend: each mode named with its colour and its outcome.
    lx = left
    for mode, p in pods.items():
        # Two lines each: a third of the width is too narrow for one.
        out.append(f'<line x1="{lx}" y1="64" x2="{lx + 22}" y2="64" stroke="{COLOR[mode]}" '
                   'stroke-width="3"/>')
        out.append(f'<text x="{lx + 28}" y="68" font-weight="bold">{escape(LABEL[mode])}</text>')
        out.append(f'<text x="{lx + 28}" y="82" font-size="11" fill="#444">'
                   f'{p["ok"]} of {p["started"]} answered, peak {p["peak_entries"]} entries</text>')
        lx += pw / len(pods)
    ymax = max([v for m in series for _, v in series[m]["entries"]] + [args.ct_max])
    panel(out, left, 96, pw, 220, tmax, ymax * 1.05,
          [(m, series[m]["entries"]) for m in series], "conntrack entries in the pod",
          (args.ct_max, f"nf_conntrack_max = {args.ct_max}"), stop)
    fmax = max([v for m in series for _, v in series[m]["failed"]] + [1])
    panel(out, left, 360, pw, 220, tmax, fmax * 1.05,
          [(m, series[m]["failed"]) for m in series], "failed requests (total)", None, stop)
    out.append(f'<text x="{left + pw / 2}" y="{H - 22}" text-anchor="middle">'
               'seconds since the load started</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pod", action="append", required=True,
                    help="MODE=NAMESPACE=SAMPLES=LOAD, once per pod")
    ap.add_argument("--namespace", action="append", default=[],
                    help="another namespace the demo made, for the JSON")
    ap.add_argument("--ct-max", type=int, required=True)
    ap.add_argument("--ct-max-saved", type=int, required=True)
    ap.add_argument("--rate", type=int, required=True)
    ap.add_argument("--duration", type=int, required=True)
    ap.add_argument("--timeout", type=int, required=True)
    ap.add_argument("--table-full-lines", type=int, default=-1,
                    help="kernel log lines seen during the race; -1 when unreadable")
    ap.add_argument("--table-full", action="append", default=[],
                    help="MODE=N: kernel lines that named this pod's namespace")
    ap.add_argument("--setup", action="append", default=[],
                    help="MODE=TEXT: how that pod captures, for the JSON")
    ap.add_argument("--svg", required=True)
    ap.add_argument("--json")
    args = ap.parse_args()

    pods, series, namespaces = {}, {}, list(args.namespace)
    pod_lines = {m: int(n) for m, n in (spec.split("=", 1) for spec in args.table_full)}
    setups = dict(spec.split("=", 1) for spec in args.setup)
    loads = {}
    for spec in args.pod:
        mode, ns, spath, lpath = spec.split("=", 3)
        namespaces.append(ns)
        loads[mode] = (read_samples(spath), *read_load(lpath))
    # Time zero: when the first load started (its clock and the samplers'
    # are both the wall clock, in ms).
    starts = [r["unix_ms"] - r["t_ms"] for _, prog, _ in loads.values() for r in prog[:1]]
    t0 = min(starts) if starts else min(s[0][0] for s, _, _ in loads.values() if s)
    for mode, (samples, progress, result) in loads.items():
        race = [s for s in samples if s[0] >= t0 - 250]
        pods[mode] = summarize(mode, race, result, args.ct_max, args.table_full_lines,
                               pod_lines.get(mode), setups.get(mode, ""))
        series[mode] = {
            "entries": [((s[0] - t0) / 1000, s[1]) for s in race if s[0] >= t0],
            "failed": [(0.0, 0)] + [((r["unix_ms"] - t0) / 1000, r["failed"]) for r in progress],
        }
    print_table(pods, args)
    write_svg(args.svg, pods, series, args)
    print(f"\n   chart: {args.svg}")
    parts = []
    for p in pods.values():
        how = (" after its conntrack table filled" if p["filled"]
               else f" with at most {p['peak_entries']} conntrack entries")
        parts.append(f"{p['label']} answered {p['ok']} of {p['started']}{how}")
    print("\n   " + ";\n   ".join(parts) + ".")
    if args.json:
        result = {
            "ct_max": args.ct_max,
            "ct_max_saved": args.ct_max_saved,
            "rate": args.rate,
            "duration_s": args.duration,
            "timeout_s": args.timeout,
            "table_full_lines": args.table_full_lines,
            "chart": args.svg,
            "namespaces": namespaces,
            "pods": pods,
        }
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
        print(f"   JSON: {args.json}")


if __name__ == "__main__":
    main()
