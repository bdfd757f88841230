#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The end of tools/outbound-churn: the table and the JSON result, from what
it recorded for each mode in WORK/MODE:

  load.N             tpin-load's JSON lines, one file per target
  pod.samples        "unix_ms conntrack_entries time_wait" every 500 ms
  remote.samples     the same in the remote's namespace
  pod.before/after   nstat -asz, then "--- nf_conntrack" and the kernel's
  remote.before/...  /proc/net/stat/nf_conntrack (hex, one row per CPU)
  conntrack          the pod's /proc/net/nf_conntrack at the end
  proxy.log          tpin-proxy's JSON access log

Standard library only.
"""

import argparse
import json
import sys
from collections import defaultdict

# The kernel's counters worth a line when they moved: how connections were
# opened and failed, what TIME_WAIT did, and conntrack's failures.
TCP_COUNTERS = [
    ("TcpActiveOpens", "connects (SYN sent)"),
    ("TcpAttemptFails", "connects that failed"),
    ("TcpExtTCPSynRetrans", "SYNs retransmitted"),
    ("TcpExtTW", "sockets into TIME_WAIT"),
    ("TcpExtTWRecycled", "TIME_WAIT tuples reused by connect"),
    ("TcpExtTCPTimeWaitOverflow", "TIME_WAIT refused (table full)"),
    ("TcpExtTCPSYNChallenge", "SYNs met by an established socket"),
    ("TcpExtTCPChallengeACK", "challenge ACKs sent"),
    ("TcpExtTCPACKSkippedTimeWait", "TIME_WAIT ACKs rate-limited"),
    ("TcpExtPAWSTimewait", "SYNs refused by a TIME_WAIT (PAWS), reset"),
    ("TcpExtPAWSEstab", "segments refused by PAWS"),
    ("TcpExtPAWSActive", "SYN-ACKs refused by PAWS"),
    ("TcpOutRsts", "resets sent"),
    ("TcpExtListenOverflows", "accept queue overflows"),
    ("TcpExtListenDrops", "SYNs dropped by a listener"),
    ("TcpEstabResets", "resets of established connections"),
]
CT_COUNTERS = ["insert_failed", "drop", "early_drop", "clash_resolve", "chaintoolong",
               "search_restart", "invalid"]


def read_counters(path):
    """nstat's "Name value rate" lines, then conntrack's hex table summed."""
    tcp, ct = {}, defaultdict(int)
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return tcp, ct
    names, in_ct = None, False
    for line in lines:
        if line.startswith("--- nf_conntrack"):
            in_ct = True
            continue
        parts = line.split()
        if not in_ct:
            if len(parts) >= 2 and not parts[0].startswith("#") and parts[1].isdigit():
                tcp[parts[0]] = int(parts[1])
        elif names is None:
            names = parts
        elif len(parts) == len(names):
            for k, v in zip(names, parts):
                ct[k] += int(v, 16)
    return tcp, ct


def read_samples(path):
    rows = []
    try:
        for line in open(path):
            p = line.split()
            if len(p) == 3 and all(x.isdigit() for x in p):
                rows.append([int(x) for x in p])
    except OSError:
        pass
    return rows


def read_loads(d):
    result = {"started": 0, "ok": 0, "failed": 0, "refused": 0, "reset": 0, "timeout": 0,
              "empty": 0, "error": 0, "errors": defaultdict(int), "p50": 0.0, "p99": 0.0,
              "max": 0.0, "targets": 0}
    import glob
    for path in sorted(glob.glob(f"{d}/load.[0-9]*")):
        if path.endswith(".err"):
            continue
        res = None
        for line in open(path):
            if line.startswith("{"):
                o = json.loads(line)
                if o.get("type") == "result":
                    res = o
        if res is None:
            sys.exit(f"outbound-churn-report: no result from tpin-load in {path}")
        result["targets"] += 1
        for k in ("started", "ok", "failed", "refused", "reset", "timeout", "empty", "error"):
            result[k] += res[k]
        for k, v in res.get("errors", {}).items():
            result["errors"][k] += v
        lat = res.get("latency_ms", {})
        # Per target; the worst is what an app would meet.
        for k in ("p50", "p99", "max"):
            result[k] = max(result[k], lat.get(k, 0.0))
    result["errors"] = dict(result["errors"])
    return result


def parse_conntrack(path, remote_port):
    """The pod's conntrack entries at the end of the run. Each is kept 120 s
    after its connection closed, unless a new connection with the same tuple
    took its place, so this is fewer than the run's connections. Returns the
    app's NATed connections among them: how many, how many NAT gave another
    source port, and how many app ports were in two or more entries at once
    (the 4-tuples that collided at the proxy's port)."""
    nat, rewritten, by_port = 0, 0, defaultdict(int)
    upstream = 0
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return None
    for line in lines:
        kv = [f.split("=", 1) for f in line.split() if "=" in f]
        t = [v for k, v in kv if k in ("src", "dst", "sport", "dport")]
        if len(t) < 8:
            continue
        osrc, odst, osport, odport, rsrc, rdst, rsport, rdport = t[:8]
        if odport != str(remote_port):
            continue
        if rsrc in ("127.0.0.1", "::1") and rsport == "15001":
            nat += 1
            by_port[osport] += 1
            if rdport != osport:
                rewritten += 1
        else:
            upstream += 1
    shared = sum(1 for n in by_port.values() if n > 1)
    return {"entries": len(lines), "app_connections_nated": nat, "source_port_rewritten": rewritten,
            "app_ports_in_two_or_more": shared, "proxy_upstream_entries": upstream}


def proxy_failures(path):
    bad = defaultdict(int)
    try:
        for line in open(path):
            try:
                o = json.loads(line)
            except ValueError:
                continue
            r = o.get("result", "ok")
            if r != "ok":
                bad[r] += 1
    except OSError:
        pass
    return dict(bad)


def summarize(mode, args):
    d = f"{args.work}/{mode}"
    load = read_loads(d)
    pod = read_samples(f"{d}/pod.samples")
    rem = read_samples(f"{d}/remote.samples")
    tb, cb = read_counters(f"{d}/pod.before")
    ta, ca = read_counters(f"{d}/pod.after")
    rtb, _ = read_counters(f"{d}/remote.before")
    rta, _ = read_counters(f"{d}/remote.after")
    return {
        "mode": mode,
        **{k: load[k] for k in ("started", "ok", "failed", "refused", "reset", "timeout",
                                "empty", "error", "errors", "targets")},
        "latency_ms": {k: load[k] for k in ("p50", "p99", "max")},
        "conntrack_peak": max((s[1] for s in pod), default=0),
        "conntrack_end": pod[-1][1] if pod else 0,
        "time_wait_pod_peak": max((s[2] for s in pod), default=0),
        "time_wait_remote_peak": max((s[2] for s in rem), default=0),
        "tcp": {k: ta.get(k, 0) - tb.get(k, 0) for k, _ in TCP_COUNTERS},
        # Every counter that moved, for whoever reads the JSON.
        "tcp_changed": {k: ta[k] - tb.get(k, 0) for k in sorted(ta) if ta[k] != tb.get(k, 0)},
        "tcp_remote": {k: rta.get(k, 0) - rtb.get(k, 0) for k, _ in TCP_COUNTERS},
        "conntrack_stat": {k: ca.get(k, 0) - cb.get(k, 0) for k in CT_COUNTERS},
        "nat": parse_conntrack(f"{d}/conntrack", args.remote_port),
        "proxy_failures": proxy_failures(f"{d}/proxy.log"),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("modes", nargs="+")
    ap.add_argument("--work", required=True)
    ap.add_argument("--rate", type=int, required=True)
    ap.add_argument("--duration", type=int, required=True)
    ap.add_argument("--targets", type=int, required=True)
    ap.add_argument("--timeout", type=int, required=True)
    ap.add_argument("--port-range", default="")
    ap.add_argument("--remote-port", type=int, required=True)
    ap.add_argument("--kernel", default="")
    ap.add_argument("--json")
    args = ap.parse_args()

    res = {m: summarize(m, args) for m in args.modes}
    w = 22

    def row(name, vals):
        print(f"   {name:<40}" + "".join(f"{v:>{w}}" for v in vals))

    ms = list(res)
    row("", ms)
    row("connections started", [res[m]["started"] for m in ms])
    row("  ok", [res[m]["ok"] for m in ms])
    row("  failed", [res[m]["failed"] for m in ms])
    row("    timeout / refused / reset",
        [f"{res[m]['timeout']} / {res[m]['refused']} / {res[m]['reset']}" for m in ms])
    row("    no answer / other errors", [f"{res[m]['empty']} / {res[m]['error']}" for m in ms])
    names = sorted({k for m in ms for k in res[m]["errors"]})
    for n in names:
        row(f"      {n}", [res[m]["errors"].get(n, 0) for m in ms])
    row("latency p50 / p99 / max (ms)",
        [f"{res[m]['latency_ms']['p50']:.1f} / {res[m]['latency_ms']['p99']:.1f} / "
         f"{res[m]['latency_ms']['max']:.0f}" for m in ms])
    row("pod conntrack entries, peak / end",
        [f"{res[m]['conntrack_peak']} / {res[m]['conntrack_end']}" for m in ms])
    row("TIME_WAIT sockets, peak: pod / remote",
        [f"{res[m]['time_wait_pod_peak']} / {res[m]['time_wait_remote_peak']}" for m in ms])
    print("   pod's TCP counters (during the run):")
    for k, text in TCP_COUNTERS:
        vals = [res[m]["tcp"][k] for m in ms]
        if any(vals) or k in ("TcpActiveOpens", "TcpExtTW"):
            row(f"  {text}", vals)
    print("   pod's conntrack statistics:")
    for k in CT_COUNTERS:
        vals = [res[m]["conntrack_stat"][k] for m in ms]
        if any(vals) or k in ("insert_failed", "drop", "clash_resolve"):
            row(f"  {k}", vals)
    if any(res[m]["nat"] and res[m]["nat"]["app_connections_nated"] for m in ms):
        print("   the app's connections NATed to 127.0.0.1:15001 (from the pod's conntrack table):")
        for k, text in (("app_connections_nated", "entries"),
                        ("app_ports_in_two_or_more", "app ports in 2+ entries (collisions)"),
                        ("source_port_rewritten", "given another source port by NAT")):
            row(f"  {text}", [res[m]["nat"][k] if res[m]["nat"] else "-" for m in ms])
    pf = sorted({k for m in ms for k in res[m]["proxy_failures"]})
    for k in pf:
        row(f"proxy logged result {k}", [res[m]["proxy_failures"].get(k, 0) for m in ms])
    print()
    for m in ms:
        r = res[m]
        verdict = "no failure" if r["failed"] == 0 else f"{r['failed']} failed"
        print(f"   {m}: {r['ok']} of {r['started']} ok, {verdict}, "
              f"{r['started'] / args.duration:.0f} connections/s over {args.duration} s")
    if args.json:
        out = {"rate": args.rate, "duration_s": args.duration, "targets": args.targets,
               "timeout_s": args.timeout, "port_range": args.port_range or "kernel default",
               "kernel": args.kernel, "modes": res}
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")
        print(f"   JSON: {args.json}")


if __name__ == "__main__":
    main()
