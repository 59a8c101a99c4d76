#!/usr/bin/env python3
"""Structural checks of rendered Kubernetes manifests (kustomize build output).

    check_manifests.py base.yaml            # the base
    check_manifests.py --overlay out.yaml   # an overlay: also resolves Secrets

Checks what a reviewer would otherwise check by eye: every expected object is
there, selectors match pod labels, probes hit /healthz and /readyz on the ops
port, pods run non-root with a read-only root filesystem, secrets come from a
Secret reference, the matcher's transactional id comes from the pod name,
PodDisruptionBudgets and ScaledObjects point at real Deployments. Prints
every problem found and exits 1 when there is any.
"""

import argparse
import sys

import yaml

SERVICES = ("ingest", "matcher", "sender", "retry", "notify", "logs")
SECRET_ENVS = {"ingest": {"HOOKLINE_API_KEYS", "HOOKLINE_SECRET_KEY", "HOOKLINE_POSTGRES_URL"}, "sender": {"HOOKLINE_SECRET_KEY"},
               "notify": {"HOOKLINE_SMTP_URL"}, "logs": {"HOOKLINE_POSTGRES_URL"}}
# Settings that hold credentials: never a literal value in a manifest.
CREDENTIAL_NAMES = ("SECRET", "PASSWORD", "API_KEYS", "SMTP_URL", "POSTGRES_URL")
SCALED = {"matcher": ("hookline-matcher", "events"), "sender": ("hookline-sender", "deliveries")}

problems = []


def problem(msg):
    problems.append(msg)


def index(docs):
    out = {}
    for d in docs:
        if not d:
            continue
        key = (d["kind"], d["metadata"]["name"])
        if key in out:
            problem(f"duplicate {key}")
        out[key] = d
    return out


def find(objs, kind, prefix):
    """Objects of kind whose name is prefix or prefix-<hash> (generated)."""
    return [o for (k, n), o in objs.items() if k == kind and (n == prefix or n.startswith(prefix + "-"))]


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def check_pod(svc, dep, objs, overlay):
    name = dep["metadata"]["name"]
    spec = dep["spec"]
    tmpl = spec["template"]
    pod = tmpl["spec"]
    if not matches(spec["selector"]["matchLabels"], tmpl["metadata"].get("labels", {})):
        problem(f"{name}: selector {spec['selector']['matchLabels']} does not match its pod labels")
    if tmpl["metadata"].get("labels", {}).get("app.kubernetes.io/component") != svc:
        problem(f"{name}: pod label app.kubernetes.io/component is not {svc}")
    if pod.get("terminationGracePeriodSeconds") != 60:
        problem(f"{name}: terminationGracePeriodSeconds is {pod.get('terminationGracePeriodSeconds')}, want 60")
    psc = pod.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True:
        problem(f"{name}: pod securityContext.runAsNonRoot is not true")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problem(f"{name}: seccompProfile is not RuntimeDefault")
    containers = pod["containers"]
    if len(containers) != 1:
        problem(f"{name}: {len(containers)} containers, want 1")
    c = containers[0]
    csc = c.get("securityContext", {})
    if csc.get("readOnlyRootFilesystem") is not True:
        problem(f"{name}: readOnlyRootFilesystem is not true")
    if csc.get("allowPrivilegeEscalation") is not False:
        problem(f"{name}: allowPrivilegeEscalation is not false")
    if "ALL" not in csc.get("capabilities", {}).get("drop", []):
        problem(f"{name}: capabilities are not all dropped")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    if "ops" not in ports:
        problem(f"{name}: no port named ops")
    if svc == "ingest" and "http" not in ports:
        problem(f"{name}: no port named http")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
        get = c.get(probe, {}).get("httpGet", {})
        if get.get("path") != path or get.get("port") not in ("ops", ports.get("ops")):
            problem(f"{name}: {probe} is {get or 'missing'}, want GET {path} on the ops port")
    if "memory" not in c.get("resources", {}).get("limits", {}) or "cpu" not in c.get("resources", {}).get("requests", {}):
        problem(f"{name}: resources need requests.cpu and limits.memory")

    env = {e["name"]: e for e in c.get("env", [])}
    ops = env.get("HOOKLINE_OPS_ADDR", {}).get("value", "")
    if not ops.endswith(f":{ports.get('ops')}") or ops.startswith("127."):
        problem(f"{name}: HOOKLINE_OPS_ADDR={ops!r} does not listen on the ops port on all interfaces")
    if svc == "ingest":
        http = env.get("HOOKLINE_HTTP_ADDR", {}).get("value", "")
        if not http.endswith(f":{ports.get('http')}") or http.startswith("127."):
            problem(f"{name}: HOOKLINE_HTTP_ADDR={http!r} does not listen on the http port on all interfaces")
    if svc == "matcher":
        ref = env.get("HOOKLINE_TRANSACTIONAL_ID", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        if ref != "metadata.name":
            problem(f"{name}: HOOKLINE_TRANSACTIONAL_ID must come from the pod name (fieldRef metadata.name), got {ref}")
    for secret_env in SECRET_ENVS.get(svc, ()):
        ref = env.get(secret_env, {}).get("valueFrom", {}).get("secretKeyRef")
        if not ref:
            problem(f"{name}: {secret_env} is not read from a Secret")
            continue
        if not ref["name"].startswith("hookline-secrets"):
            problem(f"{name}: {secret_env} comes from Secret {ref['name']}, want hookline-secrets")
        if overlay:
            sec = objs.get(("Secret", ref["name"]))
            if sec is None:
                problem(f"{name}: Secret {ref['name']} (for {secret_env}) is not in the overlay's output")
            elif ref["key"] not in {**sec.get("data", {}), **sec.get("stringData", {})}:
                problem(f"{name}: Secret {ref['name']} has no key {ref['key']}")
    for e in env.values():
        if e.get("value") and any(s in e["name"] for s in CREDENTIAL_NAMES):
            problem(f"{name}: {e['name']} is a literal value, not a Secret reference")
    cms = [s["configMapRef"]["name"] for s in c.get("envFrom", []) if "configMapRef" in s]
    if not cms:
        problem(f"{name}: no envFrom ConfigMap")
    for cm in cms:
        if ("ConfigMap", cm) not in objs:
            problem(f"{name}: envFrom ConfigMap {cm} is not in the output")
            continue
        data = objs[("ConfigMap", cm)]["data"]
        if not data.get("KAFKA_BROKERS"):
            problem(f"{name}: ConfigMap {cm} has no KAFKA_BROKERS")
        if any(k.endswith("SMTP_URL") for k in data):
            problem(f"{name}: ConfigMap {cm} holds the SMTP URL, which carries credentials: it belongs in the Secret")
        if any(k.endswith("POSTGRES_URL") for k in data):
            problem(f"{name}: ConfigMap {cm} holds the PostgreSQL URL, which carries credentials: it belongs in the Secret")
        if svc == "notify" and overlay and env.get("HOOKLINE_SMTP_URL") and not data.get("HOOKLINE_ALERT_FROM"):
            problem(f"{name}: an overlay with an SMTP server must set HOOKLINE_ALERT_FROM, or notify does not start")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--overlay", action="store_true", help="the file is an overlay's output: expect a Namespace and Secrets")
    ap.add_argument("--namespace", default=None, help="every namespaced object must be in this namespace")
    args = ap.parse_args()
    with open(args.file) as f:
        objs = index(list(yaml.safe_load_all(f)))

    deployments = {}
    for svc in SERVICES:
        found = find(objs, "Deployment", f"hookline-{svc}")
        if len(found) != 1:
            problem(f"want one Deployment hookline-{svc}, found {len(found)}")
            continue
        deployments[svc] = found[0]
        check_pod(svc, found[0], objs, args.overlay)
        pdbs = [p for p in find(objs, "PodDisruptionBudget", f"hookline-{svc}")
                if matches(p["spec"]["selector"]["matchLabels"], found[0]["spec"]["template"]["metadata"]["labels"])]
        if len(pdbs) != 1:
            problem(f"want one PodDisruptionBudget selecting the {svc} pods, found {len(pdbs)}")

    # The ingest Service must reach the ingest pods on the http port.
    svcs = find(objs, "Service", "hookline-ingest")
    if len(svcs) != 1:
        problem(f"want one Service hookline-ingest, found {len(svcs)}")
    elif "ingest" in deployments:
        s = svcs[0]
        if not matches(s["spec"]["selector"], deployments["ingest"]["spec"]["template"]["metadata"]["labels"]):
            problem("Service hookline-ingest does not select the ingest pods")
        if not any(p.get("targetPort") == "http" for p in s["spec"]["ports"]):
            problem("Service hookline-ingest does not target the http port")
    ops = find(objs, "Service", "hookline-ops")
    if len(ops) != 1:
        problem(f"want one Service hookline-ops, found {len(ops)}")
    else:
        for svc, dep in deployments.items():
            if not matches(ops[0]["spec"]["selector"], dep["spec"]["template"]["metadata"]["labels"]):
                problem(f"Service hookline-ops does not select the {svc} pods")
        if ops[0]["spec"].get("clusterIP") != "None":
            problem("Service hookline-ops should be headless (clusterIP: None) so every pod is scraped")

    # Autoscaling on consumer lag for matcher and sender.
    for svc, (group, topic_suffix) in SCALED.items():
        so = find(objs, "ScaledObject", f"hookline-{svc}")
        if len(so) != 1:
            problem(f"want one ScaledObject hookline-{svc}, found {len(so)}")
            continue
        spec = so[0]["spec"]
        target = spec["scaleTargetRef"]["name"]
        if ("Deployment", target) not in objs or objs[("Deployment", target)] is not deployments.get(svc):
            problem(f"ScaledObject hookline-{svc} targets {target}, which is not the {svc} Deployment")
        kafka = [t for t in spec.get("triggers", []) if t.get("type") == "kafka"]
        if len(kafka) != 1:
            problem(f"ScaledObject hookline-{svc}: want one kafka trigger")
            continue
        md = kafka[0]["metadata"]
        if md.get("consumerGroup") != group or not md.get("topic", "").endswith(topic_suffix):
            problem(f"ScaledObject hookline-{svc}: trigger watches {md.get('consumerGroup')}/{md.get('topic')}, want {group} on *{topic_suffix}")
        if int(spec.get("minReplicaCount", 0)) < 1:
            problem(f"ScaledObject hookline-{svc}: minReplicaCount must be at least 1")
        if "replicas" in deployments.get(svc, {}).get("spec", {}):
            problem(f"Deployment hookline-{svc} sets replicas although its ScaledObject owns them")

    if not find(objs, "ConfigMap", "hookline-config"):
        problem("no ConfigMap hookline-config")

    if args.overlay:
        if not [o for (k, _), o in objs.items() if k == "Namespace"]:
            problem("the overlay renders no Namespace")
        for (kind, name), o in objs.items():
            if kind != "Namespace" and args.namespace and o["metadata"].get("namespace") != args.namespace:
                problem(f"{kind}/{name} is in namespace {o['metadata'].get('namespace')}, want {args.namespace}")
        for svc, dep in deployments.items():
            image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
            if image == f"hookline/{svc}" or ":" not in image.rsplit("/", 1)[-1] and "@" not in image:
                problem(f"{dep['metadata']['name']}: image {image} is not pinned to a tag or digest")
    else:
        for (kind, name), o in objs.items():
            if o["metadata"].get("namespace"):
                problem(f"{kind}/{name} sets a namespace; the base must be namespace-agnostic")
        if find(objs, "Secret", "hookline-secrets"):
            problem("the base must not carry Secret values")

    kinds = sorted({k for k, _ in objs})
    if problems:
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        print(f"{args.file}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{args.file}: {len(objs)} objects OK ({', '.join(kinds)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
