-- Tables of the aether event store. Names are unqualified: the store sets search_path to its
-- schema, so they land in the configured schema (or the first one of the server's search_path).

-- Every stored event, numbered by a store-wide position.
--
-- Positions come from an identity sequence with CACHE 1, so nextval hands them out in increasing
-- order across sessions. Appends take a transaction-scoped advisory lock before inserting, so
-- positions are also assigned in commit order; readers rely on that and must never see a lower
-- position commit after a higher one. Rows inserted without that lock break this guarantee.
CREATE TABLE aether_events (
    position bigint GENERATED ALWAYS AS IDENTITY (CACHE 1) PRIMARY KEY,
    actor_kind text NOT NULL,
    -- UTF-8 bytes of the actor id: ids may contain NUL, which text columns reject.
    actor_id bytea NOT NULL,
    version bigint NOT NULL CHECK (version > 0),
    event_type text NOT NULL,
    schema_version bigint NOT NULL CHECK (schema_version BETWEEN 0 AND 4294967295),
    payload bytea NOT NULL,
    -- Metadata as given by the writer.
    occurred_at timestamptz NOT NULL,
    command_id text,
    correlation_id text,
    causation_id text,
    node text,
    reply bytea,
    -- Start time of the appending transaction (now()), a few milliseconds before its commit.
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT aether_events_actor_version_key UNIQUE (actor_kind, actor_id, version)
);

-- Serves read_all and subscribe with a filter on actor kinds.
CREATE INDEX aether_events_kind_position_idx ON aether_events (actor_kind, position);

-- The current version of every actor that was ever appended to; version 0 means no events.
-- Appends check their expectation against this row and move it under a row lock.
CREATE TABLE aether_heads (
    actor_kind text NOT NULL,
    actor_id bytea NOT NULL,
    version bigint NOT NULL CHECK (version >= 0),
    PRIMARY KEY (actor_kind, actor_id)
);

-- The newest snapshot of each actor.
CREATE TABLE aether_snapshots (
    actor_kind text NOT NULL,
    actor_id bytea NOT NULL,
    version bigint NOT NULL CHECK (version >= 0),
    schema_version bigint NOT NULL CHECK (schema_version BETWEEN 0 AND 4294967295),
    state bytea NOT NULL,
    taken_at timestamptz NOT NULL,
    saved_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (actor_kind, actor_id)
);
