"""Decode Hookline's Kafka record values with nothing but fastavro.

Values on every Hookline topic use the Confluent wire format:

    byte 0      magic, always 0
    bytes 1-4   schema id, big-endian unsigned int
    bytes 5-    Avro binary encoding of one record (no container header)

The schema for an id comes from a schema registry's GET /schemas/ids/{id}:
a Confluent-compatible registry, or Hookline's ingest, which serves its
fixed schema table read-only at the same path. Without a registry URL the
schema is read from schemas/ids.json and schemas/*.avsc in a checkout.

This module deliberately does not import anything from Hookline: it is what
an analyst would write, and tests use it to check that Hookline's bytes are
ordinary Avro.
"""

from __future__ import annotations

import io
import json
import os
import struct
import urllib.request
from pathlib import Path
from typing import Any, Callable

import fastavro

MAGIC = 0
HEADER = struct.Struct(">bI")  # magic byte, schema id

REPO = Path(__file__).resolve().parents[2]


class WireFormatError(ValueError):
    """The bytes are not a Confluent-framed Avro value."""


def split_wire(value: bytes) -> tuple[int, bytes]:
    """Return (schema id, Avro body) of a Confluent wire-format value."""
    if value is None or len(value) < HEADER.size:
        raise WireFormatError(f"value of {0 if value is None else len(value)} bytes is shorter than the 5-byte header")
    magic, schema_id = HEADER.unpack_from(value)
    if magic != MAGIC:
        raise WireFormatError(f"magic byte is {magic}, not 0")
    return schema_id, value[HEADER.size:]


def registry_fetcher(url: str, timeout: float = 5.0) -> Callable[[int], dict]:
    """Fetch schemas by id from a schema registry (or Hookline's ingest)."""
    base = url.rstrip("/")

    def fetch(schema_id: int) -> dict:
        with urllib.request.urlopen(f"{base}/schemas/ids/{schema_id}", timeout=timeout) as resp:
            body = json.load(resp)
        # The registry answers {"schema": "<the schema as a JSON string>"}.
        return json.loads(body["schema"])

    return fetch


def local_fetcher(schemas_dir: Path | str | None = None) -> Callable[[int], dict]:
    """Read schemas by id from schemas/ids.json in a Hookline checkout."""
    root = Path(schemas_dir) if schemas_dir else REPO / "schemas"
    table = json.loads((root / "ids.json").read_text())
    files = {entry["id"]: root / entry["file"] for entry in table["schemas"]}

    def fetch(schema_id: int) -> dict:
        if schema_id not in files:
            raise KeyError(f"schema id {schema_id} is not in {root / 'ids.json'}")
        return json.loads(files[schema_id].read_text())

    return fetch


class Decoder:
    """Decodes wire-format values, caching one parsed schema per id."""

    def __init__(self, fetch: Callable[[int], dict]):
        self._fetch = fetch
        self._schemas: dict[int, Any] = {}

    @classmethod
    def from_env(cls, registry_url: str | None = None) -> "Decoder":
        """A registry when one is named (argument, HOOKLINE_SCHEMA_REGISTRY_URL
        or HOOKLINE_API_URL), else the schemas in this checkout."""
        url = registry_url or os.environ.get("HOOKLINE_SCHEMA_REGISTRY_URL") or os.environ.get("HOOKLINE_API_URL")
        return cls(registry_fetcher(url) if url else local_fetcher())

    def schema(self, schema_id: int):
        if schema_id not in self._schemas:
            self._schemas[schema_id] = fastavro.parse_schema(self._fetch(schema_id))
        return self._schemas[schema_id]

    def decode(self, value: bytes) -> tuple[int, dict]:
        """Return (schema id, record as a dict). Timestamps with
        logicalType timestamp-millis come back as timezone-aware datetimes."""
        schema_id, body = split_wire(value)
        buf = io.BytesIO(body)
        rec = fastavro.schemaless_reader(buf, self.schema(schema_id))
        if buf.tell() != len(body):
            raise WireFormatError(f"{len(body) - buf.tell()} bytes left over after the record (schema id {schema_id})")
        return schema_id, rec
