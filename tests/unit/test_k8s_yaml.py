#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""examples/kubernetes/pod.yaml parses, and says what its README promises:
tpin-init as an init container with NET_ADMIN and NET_RAW, capturing
outbound too with --notrack, tpin-proxy as a sidecar running as uid 1337
with NET_ADMIN only, both on the same outbound port, readiness on 15021, and
a grace period longer than the proxy's drain timeout. Exit 77 (skipped) when
python3-yaml is missing; tools/deps installs it."""

import os
import sys

try:
    import yaml
except ImportError:
    print("test_k8s_yaml: python3-yaml is not installed; skipped")
    sys.exit(77)

top = os.environ.get("TPIN_SOURCE") or os.path.join(os.path.dirname(__file__), "..", "..")
path = os.path.join(top, "examples", "kubernetes", "pod.yaml")
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


with open(path) as f:
    docs = [d for d in yaml.safe_load_all(f) if d is not None]
check(len(docs) == 1, "one document")
pod = docs[0]
check(pod.get("apiVersion") == "v1" and pod.get("kind") == "Pod", "a v1 Pod")
spec = pod["spec"]
inits = {c["name"]: c for c in spec.get("initContainers", [])}
containers = {c["name"]: c for c in spec.get("containers", [])}

init = inits.get("tpin-init")
check(init is not None, "tpin-init is an init container")
if init:
    sc = init["securityContext"]
    check(init["command"] == ["tpin-init"], "tpin-init runs tpin-init")
    check(sorted(sc["capabilities"]["add"]) == ["NET_ADMIN", "NET_RAW"],
          "tpin-init adds NET_ADMIN and NET_RAW")
    check(sc["capabilities"].get("drop") == ["ALL"], "tpin-init drops the rest")
    check(sc.get("runAsUser") == 0, "tpin-init runs as root (capabilities need it)")
    init_args = init.get("args", [])
    check("--outbound" in init_args, "tpin-init captures outbound")
    check("--notrack" in init_args, "tpin-init keeps tpin's flows untracked")
    # Outbound capture in tproxy mode takes every inbound port (exit 2 otherwise).
    check(init_args[init_args.index("--inbound-ports") + 1] == "*"
          if "--inbound-ports" in init_args else True,
          "tpin-init intercepts every inbound port, as outbound capture needs")

proxy = containers.get("tpin-proxy")
check(proxy is not None, "tpin-proxy is a sidecar container")
if proxy:
    sc = proxy["securityContext"]
    check(sc.get("runAsUser") == 1337, "tpin-proxy runs as uid 1337")
    check(sc["capabilities"]["add"] == ["NET_ADMIN"], "tpin-proxy adds NET_ADMIN only")
    check(sc["capabilities"].get("drop") == ["ALL"], "tpin-proxy drops the rest")
    probe = proxy.get("readinessProbe", {}).get("httpGet", {})
    check(probe.get("port") == 15021 and probe.get("path") == "/healthz/ready",
          "readiness is /healthz/ready on 15021")
    args = proxy.get("args", [])
    drain = args[args.index("--drain-timeout") + 1] if "--drain-timeout" in args else "45s"
    check(drain.endswith("s") and int(drain[:-1]) < spec.get("terminationGracePeriodSeconds", 30),
          "the grace period outlasts the drain timeout")
    if init:
        def outbound_port(a):
            return a[a.index("--outbound-port") + 1] if "--outbound-port" in a else "15001"
        check(outbound_port(init.get("args", [])) == outbound_port(args),
              "tpin-init and tpin-proxy agree on the outbound port")
check(len(containers) >= 2, "an app container beside the proxy")

sys.exit(1 if failures else 0)
