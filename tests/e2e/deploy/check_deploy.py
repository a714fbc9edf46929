#!/usr/bin/env python3
"""Structural checks of deploy/ (issue 11.8), without a cluster.

kubectl's client-side dry run still asks an API server for discovery and the
OpenAPI schema (measured: `kubectl create --dry-run=client` fails with
"connection refused" and no cluster), so the manifests are parsed with
PyYAML and checked against a schema of the Kubernetes fields they use:
an unknown or misspelt key anywhere is an error, like kubectl's strict
validation. Then the facts that matter for tickprobe:
  - every tickprobe container: capabilities drop ["ALL"] and add exactly the
    "agent" line of deploy/capabilities.txt; readOnlyRootFilesystem;
    allowPrivilegeEscalation false; BTF and tracefs hostPath mounts,
    read-only; a liveness probe on /healthz at the --listen port; the scrape
    annotations name that port;
  - the sidecar shares the pod's process namespace, the DaemonSet uses hostPID;
  - the systemd unit's CapabilityBoundingSet and AmbientCapabilities equal
    the same line.
Usage: check_deploy.py DEPLOY_DIR"""
import os
import re
import sys

import yaml

S = str
I = int
B = bool
ANY = object()


def obj(**fields):
    return ("obj", fields)


def lst(item):
    return ("list", item)


def mapping(value):
    return ("map", value)


PORT = obj(name=S, containerPort=I, protocol=S, hostPort=I)
HTTPGET = obj(path=S, port=(I, S), scheme=S)
PROBE = obj(httpGet=HTTPGET, initialDelaySeconds=I, periodSeconds=I, timeoutSeconds=I, failureThreshold=I,
            successThreshold=I)
CAPS = obj(add=lst(S), drop=lst(S))
SECCTX = obj(runAsUser=I, runAsGroup=I, runAsNonRoot=B, allowPrivilegeEscalation=B, readOnlyRootFilesystem=B,
             privileged=B, capabilities=CAPS)
RESOURCES = obj(requests=mapping((S, I)), limits=mapping((S, I)))
MOUNT = obj(name=S, mountPath=S, readOnly=B, subPath=S)
CONTAINER = obj(name=S, image=S, args=lst(S), command=lst(S), ports=lst(PORT), securityContext=SECCTX,
                livenessProbe=PROBE, readinessProbe=PROBE, resources=RESOURCES, volumeMounts=lst(MOUNT),
                env=lst(obj(name=S, value=S)))
VOLUME = obj(name=S, hostPath=obj(path=S, type=S), emptyDir=obj(medium=S, sizeLimit=S))
POD_SPEC = obj(containers=lst(CONTAINER), volumes=lst(VOLUME), shareProcessNamespace=B, hostPID=B,
               terminationGracePeriodSeconds=I, serviceAccountName=S, nodeSelector=mapping(S),
               tolerations=lst(mapping(S)))
META = obj(name=S, namespace=S, labels=mapping(S), annotations=mapping(S))
TEMPLATE = obj(metadata=META, spec=POD_SPEC)
SELECTOR = obj(matchLabels=mapping(S))
KINDS = {
    "Deployment": obj(apiVersion=S, kind=S, metadata=META,
                      spec=obj(replicas=I, selector=SELECTOR, template=TEMPLATE, strategy=obj(type=S))),
    "DaemonSet": obj(apiVersion=S, kind=S, metadata=META,
                     spec=obj(selector=SELECTOR, template=TEMPLATE, updateStrategy=obj(type=S))),
}
API = {"Deployment": "apps/v1", "DaemonSet": "apps/v1"}

errors = []


def check(schema, value, path):
    if schema is ANY:
        return
    if isinstance(schema, tuple) and schema and schema[0] == "obj":
        if not isinstance(value, dict):
            errors.append(f"{path}: want an object, got {type(value).__name__}")
            return
        for k, v in value.items():
            if k not in schema[1]:
                errors.append(f"{path}.{k}: unknown field")
            else:
                check(schema[1][k], v, f"{path}.{k}")
    elif isinstance(schema, tuple) and schema and schema[0] == "list":
        if not isinstance(value, list):
            errors.append(f"{path}: want a list")
            return
        for i, v in enumerate(value):
            check(schema[1], v, f"{path}[{i}]")
    elif isinstance(schema, tuple) and schema and schema[0] == "map":
        if not isinstance(value, dict):
            errors.append(f"{path}: want a map")
            return
        for k, v in value.items():
            check(schema[1], v, f"{path}.{k}")
    elif isinstance(schema, tuple):
        if not isinstance(value, schema) or (bool not in schema and isinstance(value, bool)):
            errors.append(f"{path}: want {'/'.join(t.__name__ for t in schema)}, got {value!r}")
    else:
        if not isinstance(value, schema) or (schema is not bool and isinstance(value, bool)):
            errors.append(f"{path}: want {schema.__name__}, got {value!r}")


def agent_caps(deploy):
    for line in open(os.path.join(deploy, "capabilities.txt")):
        f = line.split()
        if f and f[0] == "agent":
            return sorted(c.upper() for c in f[1].split(","))
    sys.exit("capabilities.txt has no agent line")


def check_manifest(path, want_caps):
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    if not docs:
        errors.append(f"{path}: empty")
    for d in docs:
        kind = d.get("kind")
        if kind not in KINDS:
            errors.append(f"{path}: kind {kind!r} not checked")
            continue
        if d.get("apiVersion") != API[kind]:
            errors.append(f"{path}: {kind} apiVersion {d.get('apiVersion')!r}, want {API[kind]}")
        check(KINDS[kind], d, f"{path}:{kind}")
        spec = d["spec"]
        tmpl = spec["template"]
        if spec["selector"]["matchLabels"].items() - tmpl["metadata"].get("labels", {}).items():
            errors.append(f"{path}: selector does not match the template's labels")
        pod = tmpl["spec"]
        if kind == "Deployment" and pod.get("shareProcessNamespace") is not True:
            errors.append(f"{path}: the sidecar needs shareProcessNamespace: true")
        if kind == "DaemonSet" and pod.get("hostPID") is not True:
            errors.append(f"{path}: the DaemonSet needs hostPID: true")
        vols = {v["name"]: v for v in pod.get("volumes", [])}
        agents = [c for c in pod["containers"] if "agent" in c.get("args", [])[:1]]
        if len(agents) != 1:
            errors.append(f"{path}: want one tickprobe agent container, found {len(agents)}")
            continue
        c = agents[0]
        sc = c.get("securityContext", {})
        caps = sc.get("capabilities", {})
        if caps.get("drop") != ["ALL"]:
            errors.append(f"{path}: {c['name']} must drop ALL capabilities")
        got = sorted(x.upper().removeprefix("CAP_") for x in caps.get("add", []))
        if got != want_caps:
            errors.append(f"{path}: {c['name']} adds {got}, capabilities.txt says {want_caps}")
        if sc.get("readOnlyRootFilesystem") is not True:
            errors.append(f"{path}: {c['name']} needs readOnlyRootFilesystem: true")
        if sc.get("allowPrivilegeEscalation") is not False:
            errors.append(f"{path}: {c['name']} needs allowPrivilegeEscalation: false")
        if sc.get("privileged"):
            errors.append(f"{path}: {c['name']} must not be privileged")
        args = c["args"]
        listen = args[args.index("--listen") + 1] if "--listen" in args else "127.0.0.1:9464"
        port = int(listen.rsplit(":", 1)[1])
        if listen.startswith("127."):
            errors.append(f"{path}: --listen {listen} is not reachable by the kubelet or Prometheus")
        lp = c.get("livenessProbe", {}).get("httpGet", {})
        if lp.get("path") != "/healthz" or lp.get("port") not in (port, "metrics"):
            errors.append(f"{path}: liveness probe must GET /healthz on {port}, has {lp}")
        ann = tmpl["metadata"].get("annotations", {})
        if ann.get("prometheus.io/scrape") != "true" or ann.get("prometheus.io/port") != str(port):
            errors.append(f"{path}: scrape annotations must name port {port}")
        mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
        for need in ("/sys/kernel/btf", "/sys/kernel/tracing"):
            m = mounts.get(need)
            if not m:
                errors.append(f"{path}: {c['name']} does not mount {need}")
                continue
            v = vols.get(m["name"], {})
            if v.get("hostPath", {}).get("path") != need:
                errors.append(f"{path}: volume {m['name']} is not hostPath {need}")
            if m.get("readOnly") is not True:
                errors.append(f"{path}: {need} must be mounted read-only")
        for m in c.get("volumeMounts", []):
            if m["name"] not in vols:
                errors.append(f"{path}: mount of undefined volume {m['name']}")
    return docs


def check_unit(path, want_caps):
    props = {}
    for line in open(path):
        line = line.strip()
        if not line or line.startswith(("#", "[")):
            continue
        k, _, v = line.partition("=")
        props.setdefault(k, []).append(v)
    for key in ("CapabilityBoundingSet", "AmbientCapabilities"):
        got = sorted(c.removeprefix("CAP_") for v in props.get(key, []) for c in v.split())
        if got != want_caps:
            errors.append(f"{path}: {key} is {got}, capabilities.txt says {want_caps}")
    want = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes"}
    for k, v in want.items():
        if props.get(k, [""])[-1] != v:
            errors.append(f"{path}: want {k}={v}")
    if props.get("ProtectHome", [""])[-1] not in ("yes", "read-only", "tmpfs"):
        errors.append(f"{path}: want ProtectHome")
    # settings that silently remove a capability the agent needs
    if props.get("ProtectKernelLogs", ["no"])[-1] == "yes" and "SYSLOG" in want_caps:
        errors.append(f"{path}: ProtectKernelLogs=yes drops CAP_SYSLOG from the bounding set")
    if props.get("ProtectProc", ["default"])[-1] in ("invisible", "noaccess", "ptraceable"):
        errors.append(f"{path}: ProtectProc hides the targets' /proc entries")


def main():
    deploy = sys.argv[1]
    want = agent_caps(deploy)
    print("agent capabilities:", ",".join(want))
    k8s = os.path.join(deploy, "k8s")
    files = sorted(f for f in os.listdir(k8s) if f.endswith(".yaml"))
    if not files:
        errors.append("no manifests in deploy/k8s")
    for f in files:
        check_manifest(os.path.join(k8s, f), want)
        print("checked", f)
    units = [f for f in os.listdir(deploy) if f.endswith(".service")]
    if not units:
        errors.append("no systemd unit in deploy/")
    for u in units:
        check_unit(os.path.join(deploy, u), want)
        print("checked", u)
    for e in errors:
        print("FAIL:", e)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
