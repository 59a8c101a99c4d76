#!/usr/bin/env python3
"""Decode every record of a delivery-log topic with clients that are not
Hookline's own code, and check what they read.

Decoders, all of which must agree record for record:
  fastavro+local     the raw value, schema by id from schemas/ids.json
  fastavro+registry  the same, schema fetched from --registry /schemas/ids/{id}
  confluent          confluent-kafka's AvroDeserializer with its
                     SchemaRegistryClient pointed at --registry
  kcat               raw bytes consumed by kcat (-f '%S ... %s'), decoded
                     with fastavro; and kcat's own Avro decoder (-s value=avro)
                     when this kcat build has one

Checks: exactly --count records; every record has all fields, ids of the
right form and its key equal to its delivery id; every --expect FIELD=VALUE
holds for every record; --expect-file gives per-subscription counts and
field values. Exit 1 with every problem listed.
"""

import argparse
import json
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "analytics"))

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition  # noqa: E402
from confluent_kafka.schema_registry import SchemaRegistryClient  # noqa: E402
from confluent_kafka.schema_registry.avro import AvroDeserializer  # noqa: E402
from confluent_kafka.serialization import MessageField, SerializationContext  # noqa: E402

from hookline_avro import Decoder, local_fetcher, registry_fetcher  # noqa: E402

FIELDS = ["delivery_id", "tenant", "subscription_id", "event_id", "event_type", "url", "attempt", "replay",
          "started_at", "duration_ms", "status_code", "outcome", "error", "response_snippet", "request_bytes",
          "response_bytes", "next_attempt_at", "trace_id",
          # DeliveryAttempt version 2
          "delivery_created_at", "request_headers", "request_body", "request_body_sha256", "response_headers",
          "response_body", "response_truncated"]
OUTCOMES = {"delivered", "retrying", "dead_lettered"}

problems = []


def problem(msg):
    problems.append(msg)


def consumer(bootstrap):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": f"avro-decode-check-{uuid.uuid4()}",
                     "enable.auto.commit": False, "enable.partition.eof": True,
                     "isolation.level": "read_committed", "auto.offset.reset": "earliest"})


def wait_for(bootstrap, topic, count, wait_s):
    """Wait until the topic holds at least count records; return how many."""
    c = consumer(bootstrap)
    deadline = time.monotonic() + wait_s
    n = 0
    try:
        while True:
            md = c.list_topics(topic, timeout=10).topics.get(topic)
            if md is not None and md.error is None:
                n = 0
                for p in md.partitions:
                    low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                    n += high - low
                if n >= count:
                    return n
            if time.monotonic() > deadline:
                return n
            time.sleep(0.5)
    finally:
        c.close()


def read_raw(bootstrap, topic):
    """[(partition, offset, key, value)] of the whole topic, in order."""
    c = consumer(bootstrap)
    out = []
    try:
        parts = sorted(c.list_topics(topic, timeout=10).topics[topic].partitions)
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        left = set(parts)
        deadline = time.monotonic() + 60
        while left and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    left.discard(m.partition())
                    continue
                raise KafkaException(m.error())
            out.append((m.partition(), m.offset(), m.key(), m.value()))
        if left:
            problem(f"did not reach the end of partitions {sorted(left)} within 60 s")
    finally:
        c.close()
    return sorted(out, key=lambda r: (r[0], r[1]))


def read_kcat(kcat, bootstrap, topic):
    """{(partition, offset): value bytes} as consumed by kcat. The format
    prints each value's length before its raw bytes, so binary values frame
    safely: '<partition> <offset> <length>\\n<bytes>'."""
    res = subprocess.run([kcat, "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
                          "-X", "isolation.level=read_committed", "-f", "%p %o %S\n%s"],
                         capture_output=True, timeout=120)
    if res.returncode != 0:
        problem(f"kcat failed ({res.returncode}): {res.stderr.decode(errors='replace').strip()}")
        return {}
    data, i, out = res.stdout, 0, {}
    while i < len(data):
        nl = data.index(b"\n", i)
        p, o, size = (int(x) for x in data[i:nl].split())
        i = nl + 1
        if size < 0:  # null value
            out[(p, o)] = None
            continue
        out[(p, o)] = data[i:i + size]
        i += size
    return out


def kcat_has_avro(kcat):
    v = subprocess.run([kcat, "-V"], capture_output=True, text=True).stdout
    return "avro" in v.lower()


def read_kcat_avro(kcat, bootstrap, topic, registry):
    """{(partition, offset): JSON text} decoded by kcat's own Avro support."""
    res = subprocess.run([kcat, "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
                          "-s", "value=avro", "-r", registry, "-f", "%p %o %s\n"],
                         capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        problem(f"kcat -s value=avro failed: {res.stderr.strip()}")
        return {}
    out = {}
    for line in res.stdout.splitlines():
        p, o, js = line.split(" ", 2)
        out[(int(p), int(o))] = js
    return out


def norm(rec):
    """A decoded record in a comparable form (datetimes as epoch millis,
    bytes as hex, so that it also dumps as JSON)."""
    def one(v):
        if isinstance(v, datetime):
            return int(v.timestamp() * 1000)
        if isinstance(v, (bytes, bytearray)):
            return bytes(v).hex()
        return v
    return {k: one(v) for k, v in rec.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--topic", required=True)
    ap.add_argument("--count", type=int, required=True, help="exact number of records expected")
    ap.add_argument("--wait", type=float, default=60, help="seconds to wait for --count records to arrive")
    ap.add_argument("--registry", help="schema registry URL, e.g. Hookline ingest http://127.0.0.1:8080")
    ap.add_argument("--expect", action="append", default=[], metavar="FIELD=VALUE",
                    help="must hold for every record (repeatable)")
    ap.add_argument("--expect-file", type=Path,
                    help='JSON {"<subscription_id>": {"count": n, "fields": {...}}}')
    ap.add_argument("--kcat", choices=["auto", "require", "off"], default="auto")
    ap.add_argument("--dump", type=Path, help="write the decoded records here as JSON lines")
    args = ap.parse_args()

    have = wait_for(args.bootstrap, args.topic, args.count, args.wait)
    if have < args.count:
        problem(f"{args.topic} holds {have} records after {args.wait:.0f} s, want {args.count}")
    raw = read_raw(args.bootstrap, args.topic)
    if len(raw) != args.count:
        problem(f"read {len(raw)} records from {args.topic}, want exactly {args.count}")

    decoders = {"fastavro+local": Decoder(local_fetcher()).decode}
    if args.registry:
        decoders["fastavro+registry"] = Decoder(registry_fetcher(args.registry)).decode
        deser = AvroDeserializer(SchemaRegistryClient({"url": args.registry}))
        ctx = SerializationContext(args.topic, MessageField.VALUE)
        decoders["confluent"] = lambda v: (int.from_bytes(v[1:5], "big"), deser(v, ctx))

    kcat = shutil.which("kcat") or shutil.which("kafkacat")
    kcat_values, kcat_avro = {}, {}
    if args.kcat != "off":
        if not kcat:
            if args.kcat == "require":
                problem("kcat is not installed (Debian: apt-get install kcat)")
            else:
                print("note: kcat not installed; skipping the kcat decoder", file=sys.stderr)
        else:
            kcat_values = read_kcat(kcat, args.bootstrap, args.topic)
            if kcat_has_avro(kcat) and args.registry:
                kcat_avro = read_kcat_avro(kcat, args.bootstrap, args.topic, args.registry)
            else:
                print(f"note: {kcat} has no Avro support (Debian's build lacks libserdes); "
                      "its raw bytes are decoded with fastavro instead", file=sys.stderr)

    records = []
    for p, o, key, value in raw:
        where = f"partition {p} offset {o}"
        decoded = {}
        for name, dec in decoders.items():
            try:
                sid, rec = dec(value)
                decoded[name] = norm(rec)
            except Exception as e:  # report every failure, not only the first
                problem(f"{where}: {name} could not decode: {type(e).__name__}: {e}")
        if kcat_values:
            kv = kcat_values.get((p, o))
            if kv != value:
                problem(f"{where}: kcat read different bytes than the Kafka client")
            elif kv is not None:
                decoded["kcat"] = norm(decoders["fastavro+local"](kv)[1])
        if (p, o) in kcat_avro:
            js = json.loads(kcat_avro[(p, o)])
            if js.get("delivery_id") != decoded.get("fastavro+local", {}).get("delivery_id"):
                problem(f"{where}: kcat's Avro decoder read delivery_id {js.get('delivery_id')!r}")
        if not decoded:
            continue
        first_name, first = next(iter(decoded.items()))
        for name, rec in decoded.items():
            if rec != first:
                diff = {k: (first.get(k), rec.get(k)) for k in set(first) | set(rec) if first.get(k) != rec.get(k)}
                problem(f"{where}: {name} disagrees with {first_name}: {diff}")
        rec = first
        records.append(rec)
        missing = [f for f in FIELDS if f not in rec]
        if missing:
            problem(f"{where}: fields missing: {missing}")
            continue
        if key is None or key.decode() != rec["delivery_id"]:
            problem(f"{where}: key {key!r} is not the delivery id {rec['delivery_id']!r}")
        for field, prefix in (("delivery_id", "dlv_"), ("event_id", "evt_"), ("subscription_id", "sub_")):
            if not str(rec[field]).startswith(prefix):
                problem(f"{where}: {field}={rec[field]!r} does not start with {prefix}")
        if rec["attempt"] < 1 or rec["duration_ms"] < 0 or rec["outcome"] not in OUTCOMES:
            problem(f"{where}: implausible attempt/duration/outcome: {rec['attempt']}, {rec['duration_ms']}, {rec['outcome']}")
        if (rec["outcome"] == "retrying") != (rec["next_attempt_at"] is not None):
            problem(f"{where}: outcome {rec['outcome']} with next_attempt_at {rec['next_attempt_at']}")
        # Version 2: the headers as sent, the delivery's created_at.
        sent = {k.lower(): v for k, v in (rec["request_headers"] or {}).items()}
        if sent.get("webhook-id") != [rec["delivery_id"]] or rec["delivery_created_at"] is None:
            problem(f"{where}: request_headers {sent} / delivery_created_at {rec['delivery_created_at']}: want the webhook-id as sent")
        if any(v != "[redacted]" and not v.endswith(" [redacted]") for v in sent.get("authorization", [])):
            problem(f"{where}: an Authorization header in the delivery log is not redacted")
        for exp in args.expect:
            field, _, want = exp.partition("=")
            if str(rec.get(field)) != want:
                problem(f"{where}: {field}={rec.get(field)!r}, want {want!r}")

    if args.expect_file:
        spec = json.loads(args.expect_file.read_text())
        counts = Counter(r["subscription_id"] for r in records)
        for sub, want in spec.items():
            if counts.get(sub, 0) != want["count"]:
                problem(f"subscription {sub}: {counts.get(sub, 0)} records, want {want['count']}")
            for r in (r for r in records if r["subscription_id"] == sub):
                for field, value in want.get("fields", {}).items():
                    if r.get(field) != value:
                        problem(f"subscription {sub}, delivery {r['delivery_id']}: {field}={r.get(field)!r}, want {value!r}")
        for sub in set(counts) - set(spec):
            problem(f"unexpected subscription {sub} in the topic ({counts[sub]} records)")

    if args.dump:
        with args.dump.open("w") as f:
            for r in records:
                f.write(json.dumps(r) + "\n")

    summary = Counter((r["tenant"], r["outcome"], r["status_code"]) for r in records)
    for (tenant, outcome, status), n in sorted(summary.items()):
        print(f"  {n:4d} x tenant={tenant} outcome={outcome} status={status}", file=sys.stderr)
    used = ", ".join(list(decoders) + (["kcat"] if kcat_values else []) + (["kcat-avro"] if kcat_avro else []))
    if problems:
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        print(f"{args.topic}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{args.topic}: {len(records)} records decoded and checked with: {used}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
