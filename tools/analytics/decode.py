#!/usr/bin/env python3
"""Decode Hookline records that kcat printed raw, as JSON lines.

kcat builds without Avro support (Debian's, for one) can still print each
value's length and raw bytes; this reads that stream from stdin:

    kcat -b kafka:9092 -C -t hookline.delivery-log -o beginning -e -q -f '%p %o %S\\n%s' \\
      | python3 tools/analytics/decode.py --registry http://hookline-ingest:8080 | jq .

Each header line is '<fields...> <length>' (the length last, -1 for a null
value), followed by exactly <length> bytes. The output adds the header's
fields as _partition and _offset when the format is '%p %o %S\\n%s'.
Without --registry (or HOOKLINE_SCHEMA_REGISTRY_URL / HOOKLINE_API_URL),
schemas come from schemas/ in this checkout.
"""

import argparse
import json
import signal
import sys
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hookline_avro import Decoder  # noqa: E402


def frames(stream):
    """Yield (header fields, value bytes or None) from kcat's framed output."""
    while True:
        header = stream.readline()
        if not header:
            return
        fields = header.split()
        size = int(fields[-1])
        if size < 0:
            yield fields[:-1], None
            continue
        value = stream.read(size)
        if len(value) != size:
            raise SystemExit(f"decode: stream ended inside a {size}-byte value")
        yield fields[:-1], value


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--registry", help="schema registry or Hookline ingest URL")
    args = ap.parse_args()
    decoder = Decoder.from_env(args.registry)
    for meta, value in frames(sys.stdin.buffer):
        if value is None:
            continue
        schema_id, rec = decoder.decode(value)
        out = {"_schema_id": schema_id}
        if len(meta) == 2:
            out["_partition"], out["_offset"] = int(meta[0]), int(meta[1])
        out.update(rec)
        print(json.dumps(out, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v)))


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet when piped into head
    main()
