-- The delivery history: four tables, each partitioned by day (UTC) on its
-- time column. The store creates the partitions ahead of time and drops
-- whole days past the retention period (pglogstore/partition.go); this
-- file creates only the partitioned parents and their indexes, which every
-- partition inherits.
--
-- States and outcomes are smallints, in rank order (logstore.States):
-- 0 pending, 1 retrying, 2 failed, 3 delivered.

-- +goose Up

-- Each distinct body once per day: the payload of a delivery and the body
-- of its attempts are usually the same bytes, and a batch's JSON array is
-- the same for every delivery in it. Rows name a body by the first 16
-- bytes of its SHA-256 and the day of their own time.
CREATE TABLE bodies (
    hash bytea NOT NULL,
    day  date  NOT NULL,
    body bytea NOT NULL,
    PRIMARY KEY (hash, day)
) PARTITION BY RANGE (day);

-- Events as received. A producer-chosen id is unique per tenant only.
CREATE TABLE events (
    tenant      text        NOT NULL,
    id          text        NOT NULL,
    received_at timestamptz NOT NULL,
    type        text        NOT NULL,
    subject     text        NOT NULL,
    source      text        NOT NULL,
    occurred_at timestamptz,
    data        text        NOT NULL,  -- the JSON object, byte for byte
    changed     jsonb,                 -- array of field names, or NULL
    previous    text,                  -- JSON object, or NULL
    PRIMARY KEY (tenant, id, received_at)
) PARTITION BY RANGE (received_at);
-- Keyset pages, newest first: (received_at, id) < cursor.
CREATE INDEX events_by_time    ON events (tenant, received_at DESC, id DESC);
CREATE INDEX events_by_type    ON events (tenant, type, received_at DESC, id DESC);
CREATE INDEX events_by_subject ON events (tenant, subject, received_at DESC, id DESC);

-- Deliveries and their current state. The state columns are updated in
-- place when an attempt moves a delivery forward; none of them is indexed,
-- so these are HOT updates (no index entry written), on pages with room
-- left for them (fillfactor 50, set per partition: see partition.go).
CREATE TABLE deliveries (
    tenant          text        NOT NULL,
    id              text        NOT NULL,
    created_at      timestamptz NOT NULL,
    subscription_id text        NOT NULL,
    event_id        text        NOT NULL,
    event_type      text        NOT NULL,
    url             text        NOT NULL,
    payload_hash    bytea,                -- NULL until the delivery record is stored
    event_time      timestamptz,
    state           smallint    NOT NULL CHECK (state BETWEEN 0 AND 3),
    updated_at      timestamptz,          -- when the state became true (logstore.Ahead)
    attempts        integer     NOT NULL,
    last_attempt_at timestamptz,
    last_status     smallint    NOT NULL DEFAULT 0,
    last_error      text        NOT NULL DEFAULT '',
    next_attempt_at timestamptz,
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX deliveries_by_time         ON deliveries (tenant, created_at DESC, id DESC);
CREATE INDEX deliveries_by_subscription ON deliveries (tenant, subscription_id, created_at DESC, id DESC);
CREATE INDEX deliveries_by_event        ON deliveries (tenant, event_id, created_at DESC, id DESC);

-- Attempts, immutable once written.
CREATE TABLE attempts (
    tenant              text        NOT NULL,
    delivery_id         text        NOT NULL,
    attempt             integer     NOT NULL,
    started_at          timestamptz NOT NULL,
    delivery_created_at timestamptz NOT NULL,
    subscription_id     text        NOT NULL,
    event_id            text        NOT NULL,
    event_type          text        NOT NULL,
    url                 text        NOT NULL,
    outcome             smallint    NOT NULL CHECK (outcome BETWEEN 1 AND 3),
    duration_ms         integer     NOT NULL,
    request_headers     jsonb,
    body_hash           bytea,
    response_status     smallint    NOT NULL,
    response_headers    jsonb,
    response_body       bytea,
    response_truncated  boolean     NOT NULL,
    error               text        NOT NULL,
    next_attempt_at     timestamptz,
    replay              boolean     NOT NULL,
    trace_id            text        NOT NULL,
    PRIMARY KEY (delivery_id, attempt, started_at)
) PARTITION BY RANGE (started_at);
-- The Logs tab of a webhook. INCLUDE makes Stats an index-only scan.
CREATE INDEX attempts_by_subscription ON attempts
    (tenant, subscription_id, started_at DESC, delivery_id DESC, attempt DESC) INCLUDE (outcome, duration_ms);
-- The same with a status filter: O(page) whatever the share of failures.
CREATE INDEX attempts_by_outcome ON attempts
    (tenant, subscription_id, outcome, started_at DESC, delivery_id DESC, attempt DESC);

-- +goose Down
DROP TABLE attempts;
DROP TABLE deliveries;
DROP TABLE events;
DROP TABLE bodies;
