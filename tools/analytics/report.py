#!/usr/bin/env python3
"""Answer three questions from Hookline's delivery log.

  1. success rate per endpoint (subscription)
  2. latency percentiles (p50, p99) per tenant
  3. outcomes per attempt number (how often a 1st, 2nd, ... attempt works)

It reads hookline.delivery-log from the beginning (or from --since ago) up to
the end as it was when the report started, decodes each value (Confluent
wire format + Avro, see hookline_avro.py) and prints tables, or JSON with
--json. It joins no consumer group and commits nothing.

    python3 tools/analytics/report.py --bootstrap 127.0.0.1:9092
    python3 tools/analytics/report.py --since 24h --registry http://hookline-ingest:8080
    python3 tools/analytics/report.py --json | jq '.endpoints[] | select(.attempt_success_rate < 0.9)'

Needs: pip install -r tools/analytics/requirements.txt
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import sys
import time
import uuid
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition  # noqa: E402

from hookline_avro import Decoder  # noqa: E402

OUTCOMES = ("delivered", "retrying", "dead_lettered")


def parse_duration(text: str) -> float:
    """'90s', '15m', '24h', '7d' -> seconds."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 15m, 24h or 7d")
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def percentile(sorted_values: list[int], q: float) -> int | None:
    """Nearest-rank percentile: the smallest value with at least q of the
    values at or below it."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def read_log(bootstrap: str, topic: str, decoder: Decoder, since_s: float | None,
             timeout_s: float, extra_config: dict | None = None):
    """Yield every decoded record of topic up to its end at start time."""
    conf = {
        "bootstrap.servers": bootstrap,
        # librdkafka wants a group id even for assign(); nothing is committed.
        "group.id": f"hookline-report-{uuid.uuid4()}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "isolation.level": "read_committed",
        "auto.offset.reset": "earliest",
    }
    conf.update(extra_config or {})
    consumer = Consumer(conf)
    try:
        md = consumer.list_topics(topic, timeout=timeout_s)
        tmd = md.topics.get(topic)
        if tmd is None or tmd.error is not None:
            raise SystemExit(f"report: topic {topic} not found on {bootstrap}: {tmd.error if tmd else 'no metadata'}")
        parts = sorted(tmd.partitions)
        # Where to start: the beginning, or the first offset at/after since.
        if since_s is not None:
            ts_ms = int((time.time() - since_s) * 1000)
            starts = consumer.offsets_for_times([TopicPartition(topic, p, ts_ms) for p in parts], timeout=timeout_s)
        else:
            starts = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts]
        # Where to stop: the end as it is now, so the report is a snapshot.
        remaining = {}
        for tp in starts:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=timeout_s)
            start = low if tp.offset < 0 else tp.offset
            if start < high:
                remaining[tp.partition] = high
        if not remaining:
            return
        consumer.assign([tp for tp in starts if tp.partition in remaining])
        deadline = time.monotonic() + timeout_s
        while remaining:
            msg = consumer.poll(0.5)
            if msg is None:
                if time.monotonic() > deadline:
                    raise SystemExit(f"report: no progress for {timeout_s}s; partitions still unread: {sorted(remaining)}")
                continue
            deadline = time.monotonic() + timeout_s
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    remaining.pop(msg.partition(), None)
                    continue
                raise KafkaException(msg.error())
            if msg.offset() + 1 >= remaining.get(msg.partition(), math.inf):
                remaining.pop(msg.partition(), None)
            if msg.value() is None:
                continue
            _, rec = decoder.decode(msg.value())
            yield rec
    finally:
        consumer.close()


def summarize(records, tenant: str | None = None) -> dict:
    endpoints: dict[str, dict] = {}
    delivered_ids: dict[str, set] = defaultdict(set)
    all_ids: dict[str, set] = defaultdict(set)
    latency: dict[str, list] = defaultdict(list)
    by_attempt: dict[int, dict] = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
    n = 0
    first = last = None
    for r in records:
        if tenant and r["tenant"] != tenant:
            continue
        n += 1
        started = r["started_at"]
        first = started if first is None or started < first else first
        last = started if last is None or started > last else last
        outcome = r["outcome"]
        sub = r["subscription_id"]
        ep = endpoints.setdefault(sub, {"tenant": r["tenant"], "subscription_id": sub, "url": r["url"],
                                        "attempts": 0, **dict.fromkeys(OUTCOMES, 0)})
        ep["url"] = r["url"]  # the latest URL, should it have changed
        ep["attempts"] += 1
        ep[outcome] = ep.get(outcome, 0) + 1
        all_ids[sub].add(r["delivery_id"])
        if outcome == "delivered":
            delivered_ids[sub].add(r["delivery_id"])
        latency[r["tenant"]].append(r["duration_ms"])
        counts = by_attempt[r["attempt"]]
        counts[outcome] = counts.get(outcome, 0) + 1

    out_endpoints = []
    for sub, ep in endpoints.items():
        ep["attempt_success_rate"] = ep["delivered"] / ep["attempts"]
        ep["deliveries"] = len(all_ids[sub])
        ep["deliveries_delivered"] = len(delivered_ids[sub])
        ep["delivery_success_rate"] = ep["deliveries_delivered"] / ep["deliveries"]
        out_endpoints.append(ep)
    out_endpoints.sort(key=lambda e: (e["attempt_success_rate"], -e["attempts"]))

    out_tenants = []
    for t, values in sorted(latency.items()):
        values.sort()
        out_tenants.append({"tenant": t, "attempts": len(values), "p50_ms": percentile(values, 0.50),
                            "p99_ms": percentile(values, 0.99), "max_ms": values[-1]})

    out_attempts = []
    for a in sorted(by_attempt):
        c = by_attempt[a]
        total = sum(c.values())
        out_attempts.append({"attempt": a, "attempts": total, **c, "success_rate": c["delivered"] / total})

    iso = lambda d: d.astimezone(timezone.utc).isoformat() if isinstance(d, datetime) else d  # noqa: E731
    return {"records": n, "first_started_at": iso(first), "last_started_at": iso(last),
            "endpoints": out_endpoints, "tenants": out_tenants, "attempt_numbers": out_attempts}


def table(headers: list[str], rows: list[list]) -> str:
    cells = [headers] + [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def print_report(s: dict, topic: str) -> None:
    print(f"{s['records']} attempts in {topic}, started {s['first_started_at']} .. {s['last_started_at']}\n")
    print("1. Success rate per endpoint (worst first)")
    print(table(["TENANT", "SUBSCRIPTION", "URL", "ATTEMPTS", "DELIVERED", "RETRYING", "DEAD", "ATTEMPT OK", "DELIVERIES", "DELIVERY OK"],
                [[e["tenant"], e["subscription_id"], e["url"], e["attempts"], e["delivered"], e["retrying"],
                  e["dead_lettered"], pct(e["attempt_success_rate"]), e["deliveries"], pct(e["delivery_success_rate"])]
                 for e in s["endpoints"]]))
    print("\n2. Attempt latency per tenant (ms, nearest rank)")
    print(table(["TENANT", "ATTEMPTS", "P50", "P99", "MAX"],
                [[t["tenant"], t["attempts"], t["p50_ms"], t["p99_ms"], t["max_ms"]] for t in s["tenants"]]))
    print("\n3. Outcomes per attempt number")
    print(table(["ATTEMPT", "ATTEMPTS", "DELIVERED", "RETRYING", "DEAD", "SUCCESS"],
                [[a["attempt"], a["attempts"], a["delivered"], a["retrying"], a["dead_lettered"], pct(a["success_rate"])]
                 for a in s["attempt_numbers"]]))


def main(argv=None) -> int:
    prefix = os.environ.get("HOOKLINE_TOPIC_PREFIX", "hookline.")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bootstrap", default=os.environ.get("KAFKA_BROKERS", "127.0.0.1:9092"),
                   help="Kafka brokers (default $KAFKA_BROKERS or 127.0.0.1:9092)")
    p.add_argument("--topic", default=prefix + "delivery-log",
                   help="delivery-log topic (default $HOOKLINE_TOPIC_PREFIX + delivery-log)")
    p.add_argument("--registry", default=None,
                   help="schema registry or Hookline ingest URL (default $HOOKLINE_SCHEMA_REGISTRY_URL, "
                        "$HOOKLINE_API_URL, else schemas/ in this checkout)")
    p.add_argument("--since", type=parse_duration, default=None, help="only attempts from this long ago, e.g. 24h")
    p.add_argument("--tenant", default=None, help="only this tenant")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds without progress before giving up")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = p.parse_args(argv)

    decoder = Decoder.from_env(args.registry)
    summary = summarize(read_log(args.bootstrap, args.topic, decoder, args.since, args.timeout), args.tenant)
    if args.json:
        json.dump({"topic": args.topic, **summary}, sys.stdout, indent=2)
        print()
    else:
        print_report(summary, args.topic)
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet when piped into head
    sys.exit(main())
