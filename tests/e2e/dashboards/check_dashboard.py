#!/usr/bin/env python3
"""Checks a Grafana dashboard's structure and runs its PromQL against Prometheus.

  check_dashboard.py static DASHBOARD
      JSON parses; unique panel ids; every non-row panel has a datasource that
      is the ${datasource} variable, at least one target with an expression,
      and a unit; every $variable used is defined (or a Grafana built-in);
      the panels marked as needing future agent metrics are exactly FUTURE_PANELS.

  check_dashboard.py queries DASHBOARD PROM_URL [NAME=VALUE ...]
      Substitutes template variables (default: every dashboard variable -> .*)
      and Grafana interval macros, then runs every target expression and every
      label_values() variable query as an instant query. Each must return
      status "success"; all but FUTURE_PANELS must return a non-empty result.

Exit status 0 when every check passed, 1 otherwise (each failure is printed).
"""
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

# Panels whose metrics the agent does not export yet (they need
# `tickprobe agent --runtime`). Their queries must still be valid PromQL, but
# an empty result is expected. Keep in sync with the dashboard: a panel whose
# description says FUTURE_MARKER must be listed here, and only those.
FUTURE_MARKER = "needs a game runtime with usdt probes"
FUTURE_PANELS = {
    "Tick duration p50 / p99",
    "Hitches by cause",
    "GC / arena pause p99",
    "Live coroutines",
}

# The network row needs a process with sockets and OpenSSL (tickgame in the
# test); like the runtime panels, it may be empty for a selection that is
# not a game server.
NETWORK_PANELS = {
    "Socket-blocked time by operation (seconds per second)",
    "Socket-blocked p99 by operation",
    "Send backpressure: EAGAIN and partial writes",
    "TCP connections opened / closed / reset, and retransmits",
    "TLS handshakes by side and result",
    "TLS handshake latency p50 / p99",
    "TLS handshake CPU (cores)",
}

RUNTIME_OPTIONAL = False

# What the test substitutes for Grafana's built-in macros.
BUILTINS = {
    "__rate_interval": "30s",
    "__interval": "15s",
    "__range": "5m",
}

VAR_RE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")

failures = []


def fail(msg):
    failures.append(msg)
    print(f"FAIL: {msg}", file=sys.stderr)


def all_panels(dash):
    """Top-level panels plus the panels nested in collapsed rows."""
    for p in dash.get("panels", []):
        yield p
        for q in p.get("panels", []) or []:
            yield q


def variable_names(dash):
    return [v["name"] for v in dash.get("templating", {}).get("list", [])]


def substitute(expr, values):
    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name in values:
            return values[name]
        if name in BUILTINS:
            return BUILTINS[name]
        raise KeyError(name)
    return VAR_RE.sub(repl, expr)


def is_future(panel):
    return FUTURE_MARKER in panel.get("description", "").lower() or FUTURE_MARKER in panel.get("title", "").lower()


def check_static(dash):
    names = variable_names(dash)
    if "datasource" not in names:
        fail("no 'datasource' template variable")
    else:
        ds_var = next(v for v in dash["templating"]["list"] if v["name"] == "datasource")
        if ds_var.get("type") != "datasource" or ds_var.get("query") != "prometheus":
            fail("'datasource' variable is not of type datasource/prometheus")
    for needed in ("comm", "pid"):
        if needed not in names:
            fail(f"no '{needed}' template variable")
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query" and not (v.get("definition") or "").startswith("label_values("):
            fail(f"variable {v['name']}: expected a label_values() query")

    if not 30 <= int(dash.get("schemaVersion", 0)) <= 41:
        fail(f"schemaVersion {dash.get('schemaVersion')} is not a current Grafana schema")

    seen_ids = {}
    titles = set()
    n_panels = 0
    for p in all_panels(dash):
        pid, title = p.get("id"), p.get("title", "")
        if pid is None:
            fail(f"panel {title!r} has no id")
        elif pid in seen_ids:
            fail(f"panel id {pid} used by both {seen_ids[pid]!r} and {title!r}")
        else:
            seen_ids[pid] = title
        if "gridPos" not in p:
            fail(f"panel {title!r} has no gridPos")
        if p.get("type") == "row":
            continue
        n_panels += 1
        if not title:
            fail(f"panel {pid} has no title")
        if title in titles:
            fail(f"two panels titled {title!r}")
        titles.add(title)
        if not p.get("description"):
            fail(f"panel {title!r} has no description")
        ds = p.get("datasource")
        if not isinstance(ds, dict) or ds.get("uid") != "${datasource}" or ds.get("type") != "prometheus":
            fail(f"panel {title!r}: datasource is {ds!r}, expected the ${{datasource}} variable")
        unit = p.get("fieldConfig", {}).get("defaults", {}).get("unit")
        if not unit:
            fail(f"panel {title!r} has no unit")
        targets = p.get("targets") or []
        if not targets:
            fail(f"panel {title!r} has no targets")
        ref_ids = [t.get("refId") for t in targets]
        if len(set(ref_ids)) != len(ref_ids):
            fail(f"panel {title!r}: duplicate refIds {ref_ids}")
        for t in targets:
            if not (t.get("expr") or "").strip():
                fail(f"panel {title!r} target {t.get('refId')}: empty expr")
                continue
            tds = t.get("datasource")
            if tds is not None and tds.get("uid") != "${datasource}":
                fail(f"panel {title!r} target {t.get('refId')}: datasource {tds!r}")
            try:
                substitute(t["expr"], {n: ".*" for n in names})
            except KeyError as e:
                fail(f"panel {title!r} target {t.get('refId')}: undefined variable ${e.args[0]}")
        if is_future(p) != (title in FUTURE_PANELS):
            fail(f"panel {title!r}: marked future in the dashboard ({is_future(p)}) "
                 f"but {'not ' if title not in FUTURE_PANELS else ''}in the test's FUTURE_PANELS")
    for t in FUTURE_PANELS - titles:
        fail(f"FUTURE_PANELS lists {t!r}, which is not in the dashboard")
    if failures:
        return
    print(f"ok: dashboard structure ({n_panels} panels, ids unique, datasource/targets/units/descriptions set, "
          f"variables {', '.join(names)})")


def prom_query(prom, expr):
    url = prom.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:  # 400/422 carry a JSON error body
        try:
            return json.load(e)
        except ValueError:
            return {"status": "error", "error": f"HTTP {e.code}"}


def check_queries(dash, prom, overrides):
    values = {n: ".*" for n in variable_names(dash) if n != "datasource"}
    values.update(overrides)
    shown = ", ".join(f"${k}={v}" for k, v in sorted(values.items()))
    checked = 0

    # Variable queries: label_values(SELECTOR, LABEL) -> count by (LABEL) (SELECTOR).
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", v["definition"].strip())
        if not m:
            fail(f"variable {v['name']}: cannot parse {v['definition']!r}")
            continue
        expr = f"count by ({m.group(2)}) ({substitute(m.group(1), values)})"
        res = prom_query(prom, expr)
        if res.get("status") != "success":
            fail(f"variable {v['name']}: {expr}: {res.get('error')}")
        elif not res["data"]["result"]:
            fail(f"variable {v['name']}: no values ({expr})")
        checked += 1

    for p in all_panels(dash):
        if p.get("type") == "row":
            continue
        title = p["title"]
        future = (title in FUTURE_PANELS or title in NETWORK_PANELS) and RUNTIME_OPTIONAL
        for t in p.get("targets", []):
            expr = substitute(t["expr"], values)
            res = prom_query(prom, expr)
            checked += 1
            if res.get("status") != "success":
                fail(f"panel {title!r} target {t['refId']}: {res.get('errorType')}: {res.get('error')}\n  query: {expr}")
                continue
            if future:
                continue
            if not res["data"]["result"]:
                fail(f"panel {title!r} target {t['refId']}: empty result\n  query: {expr}")
        if future:
            print(f"not checked for data (runtime panel; the selection is not a game runtime): {title!r} "
                  f"(its PromQL was still validated)")
    if not failures:
        print(f"ok: {checked} queries with {shown}, every non-future panel returned data")


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("static", "queries"):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        with open(sys.argv[2]) as f:
            dash = json.load(f)
    except (OSError, ValueError) as e:
        print(f"FAIL: cannot read dashboard {sys.argv[2]}: {e}", file=sys.stderr)
        return 1
    if sys.argv[1] == "static":
        check_static(dash)
    else:
        if len(sys.argv) < 4:
            print(__doc__, file=sys.stderr)
            return 2
        overrides = dict(a.split("=", 1) for a in sys.argv[4:])
        # _runtime_optional=1: the selection is not a game runtime (no USDT
        # probes), so the runtime panels may be empty.
        global RUNTIME_OPTIONAL
        RUNTIME_OPTIONAL = overrides.pop("_runtime_optional", "") == "1"
        check_queries(dash, sys.argv[3], overrides)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
