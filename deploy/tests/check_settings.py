#!/usr/bin/env python3
"""Do docker-compose.yml and the Kubernetes manifests give each service the
settings it requires? Checked against what the services themselves say.

    check_settings.py --settings settings.json --bin DIR \\
        [--compose docker-compose.yml] [--base base.yaml] [--overlay out.yaml ...]

settings.json is `hookstack settings -json`: the services, and every
setting each binary reads with its default (from its -h). DIR holds the
service binaries, which validate a deployment's settings themselves
(`<service> -check`). For each service in each deployment:

  - it is deployed (a compose service, a Deployment with its component label);
  - every setting its -h marks required is set;
  - every setting set for it alone is one it reads (a typo, or a setting
    left behind by a rename, is silently ignored by the service), and every
    shared one (the compose anchor, a ConfigMap) is read by a service that
    gets it;
  - complete deployments (compose, overlays; not the base, which an overlay
    completes): every setting whose default is on 127.0.0.1 or localhost is
    set, since in a container that is the container itself, and no address
    (*_ADDR, KAFKA_BROKERS) is set to one; and the binary, given exactly
    the deployment's environment with -check, accepts it (this catches what
    -h cannot say: a value out of range, HOOKLINE_ALERT_FROM required with
    HOOKLINE_SMTP_URL, ingest without API keys).

Prints every problem found and exits 1 when there is any.
"""

import argparse
import base64
import json
import os
import subprocess
import sys

import yaml

OURS = ("HOOKLINE_", "KAFKA_", "REDIS_", "OTEL_")
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
UNKNOWN = object()  # set from a Secret the render does not hold

problems = []


def problem(where, msg):
    problems.append(f"{where}: {msg}")


def ours(name):
    return name.startswith(OURS)


class Env:
    """A service's environment in one deployment."""

    def __init__(self):
        self.values = {}  # name -> value (str) or UNKNOWN
        self.own = set()  # set for this service alone
        self.shared = set()  # from a source several services share


def compose_envs(path, services):
    doc = yaml.safe_load(open(path))
    shared = {k: str(v) for k, v in (doc.get("x-hookline", {}).get("environment") or {}).items()}
    out = {}
    for svc in services:
        s = doc.get("services", {}).get(svc)
        if s is None:
            problem(path, f"no service {svc}")
            continue
        env = s.get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
        e = Env()
        for k, v in env.items():
            e.values[k] = str(v)
            (e.shared if k in shared and shared[k] == str(v) else e.own).add(k)
        out[svc] = e
    return out, {path + " x-hookline": set(shared)}


def manifest_envs(path, services, resolve):
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    maps = {d["metadata"]["name"]: d.get("data") or {} for d in docs if d["kind"] == "ConfigMap"}
    secrets = {}
    for d in docs:
        if d["kind"] == "Secret":
            data = {k: base64.b64decode(v).decode() for k, v in (d.get("data") or {}).items()}
            data.update(d.get("stringData") or {})
            secrets[d["metadata"]["name"]] = data
    out, shared_sources = {}, {}
    for svc in services:
        deps = [d for d in docs if d["kind"] == "Deployment" and
                d["spec"]["template"]["metadata"].get("labels", {}).get("app.kubernetes.io/component") == svc]
        if len(deps) != 1:
            problem(path, f"{len(deps)} Deployments of {svc}, want 1")
            continue
        c = deps[0]["spec"]["template"]["spec"]["containers"][0]
        e = Env()
        for ef in c.get("envFrom", []):
            if "configMapRef" in ef:
                name = ef["configMapRef"]["name"]
                if name not in maps:
                    problem(path, f"{svc}: no ConfigMap {name}")
                    continue
                shared_sources.setdefault(f"{path} ConfigMap {name}", set()).update(maps[name])
                for k, v in maps[name].items():
                    e.values[k] = v
                    e.shared.add(k)
            elif "secretRef" in ef:
                name = ef["secretRef"]["name"]
                for k, v in secrets.get(name, {}).items():
                    e.values[k] = v
                    e.shared.add(k)
        for item in c.get("env", []):
            name = item["name"]
            if "value" in item:
                value = item["value"]
            else:
                ref = item.get("valueFrom", {})
                if "secretKeyRef" in ref:
                    sk = ref["secretKeyRef"]
                    value = secrets.get(sk["name"], {}).get(sk["key"])
                    if value is None:
                        if sk.get("optional"):
                            if not resolve:  # may be in the Secret the overlay brings
                                e.own.add(name)
                            continue
                        if resolve:
                            problem(path, f"{svc}: {name} comes from Secret {sk['name']} key {sk['key']}, which the render does not hold")
                        value = UNKNOWN
                elif "fieldRef" in ref:
                    value = deps[0]["metadata"]["name"] + "-5d9c7-abcde"  # what a pod name looks like
                elif "configMapKeyRef" in ref:
                    cm = ref["configMapKeyRef"]
                    value = maps.get(cm["name"], {}).get(cm["key"], UNKNOWN)
                else:
                    value = UNKNOWN  # resourceFieldRef and the like: not ours
            e.values[name] = value
            e.own.add(name)
            e.shared.discard(name)
        out[svc] = e
    return out, shared_sources


def check(where, envs, shared_sources, reads, complete, binaries):
    for svc, e in envs.items():
        docs = {d["env"]: d for d in reads[svc]}
        for name in sorted(e.own):
            if ours(name) and name not in docs:
                problem(where, f"{svc} is given {name}, which it does not read")
        for name, d in sorted(docs.items()):
            if d.get("required") and name not in e.values:
                problem(where, f"{svc}: {name} is required and not set")
        if not complete:
            continue
        for name, d in sorted(docs.items()):
            default = d.get("default", "")
            if any(lo in default for lo in LOOPBACK) and name not in e.values:
                problem(where, f"{svc}: {name} is not set; its default {default} is the container itself")
            value = e.values.get(name)
            if isinstance(value, str) and (name.endswith("_ADDR") or name == "KAFKA_BROKERS") and \
                    any(lo in value for lo in LOOPBACK):
                problem(where, f"{svc}: {name}={value} is on the container's own loopback")
        if any(v is UNKNOWN for k, v in e.values.items() if ours(k)):
            continue
        env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "")}
        env.update({k: v for k, v in e.values.items() if isinstance(v, str)})
        run = subprocess.run([os.path.join(binaries, svc), "-check"], env=env, capture_output=True, text=True, timeout=60)
        if run.returncode != 0:
            said = " ".join((run.stderr + run.stdout).split())
            problem(where, f"{svc} -check refuses its settings: {said}")
    for source, names in shared_sources.items():
        getters = [svc for svc, e in envs.items() if names & e.shared]
        for name in sorted(names):
            if ours(name) and not any(name in {d["env"] for d in reads[svc]} for svc in getters):
                problem(source, f"{name} is read by none of the services given it ({', '.join(getters)})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--settings", required=True, help="hookstack settings -json")
    ap.add_argument("--bin", required=True, help="folder of the service binaries")
    ap.add_argument("--compose", help="docker-compose.yml")
    ap.add_argument("--base", action="append", default=[], help="a rendered base (completed by an overlay)")
    ap.add_argument("--overlay", action="append", default=[], help="a rendered overlay (a complete deployment)")
    args = ap.parse_args()
    info = json.load(open(args.settings))
    services, reads = info["services"], info["settings"]
    if args.compose:
        envs, shared = compose_envs(args.compose, services)
        check(args.compose, envs, shared, reads, True, args.bin)
    for path in args.base:
        envs, shared = manifest_envs(path, services, resolve=False)
        check(path, envs, shared, reads, False, args.bin)
    for path in args.overlay:
        envs, shared = manifest_envs(path, services, resolve=True)
        check(path, envs, shared, reads, True, args.bin)
    for p in problems:
        print("  -", p, file=sys.stderr)
    checked = ([args.compose] if args.compose else []) + args.base + args.overlay
    if problems:
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        sys.exit(1)
    print(f"settings check out: {', '.join(services)} in {', '.join(checked)}", file=sys.stderr)


if __name__ == "__main__":
    main()
