-- aether_append writes a batch of appends, each to a different actor, with one call: the store
-- sends one round trip per batch instead of one per step.
--
-- Arguments, one array entry per append, in the order the rows should be locked:
--   p_kinds, p_ids       the actor
--   p_expected           the version the append expects, or -1 for any version
--   p_counts             its number of events
-- and one entry per event, the events of each append together and in version order:
--   p_event_append       1-based index of the event's append
--   p_event_offset       1-based place of the event within its append
--   p_types … p_replies  the event's columns
--
-- Returns one row per append, in argument order: the actor's version before the batch, and the
-- position of the append's last event, or NULL when its expectation did not match (a conflict,
-- which stores nothing for that append and does not affect the others).
--
-- Steps:
-- 1. Insert a heads row at version 0 for every append that may start a stream, so even an
--    actor's first append has a row to lock. Concurrent first appends meet on that row.
-- 2. Move the heads of the appends whose expectation matches with one conditional UPDATE. The
--    update locks each row it changes; when another transaction changed the row in the
--    meantime, PostgreSQL waits for it to end and checks the condition again against the
--    version it committed.
-- 3. Lock the heads rows of the remaining appends with FOR UPDATE and read their versions. Such
--    an append is a conflict, unless another writer moved its actor to exactly the expected
--    version between steps 2 and 3; then it is accepted now, under the lock.
-- 4. Take the transaction-scoped advisory lock p_lock_key, then insert the accepted events. The
--    lock is held until commit, so positions are assigned in commit order and a reader that has
--    seen position p will never see a lower one commit later. Row locks are only requested
--    before the advisory lock, and its holder only inserts new rows, so the two kinds of locks
--    cannot wait for each other in a cycle.
-- 5. Queue a NOTIFY on p_channel with the highest position; PostgreSQL sends it at commit.
--
-- Step 2 visits rows in argument order, which the store sorts by actor, so two batches that
-- share actors lock them in the same order. Step 3 can break that order; PostgreSQL then
-- detects the deadlock and rolls one batch back, and the store runs it again.
CREATE FUNCTION aether_append(
    p_lock_key bigint,
    p_channel text,
    p_kinds text[],
    p_ids bytea[],
    p_expected bigint[],
    p_counts bigint[],
    p_event_append bigint[],
    p_event_offset bigint[],
    p_types text[],
    p_schema_versions bigint[],
    p_payloads bytea[],
    p_occurred_at timestamptz[],
    p_command_ids text[],
    p_correlation_ids text[],
    p_causation_ids text[],
    p_nodes text[],
    p_replies bytea[]
) RETURNS TABLE (version_before bigint, last_position bigint)
LANGUAGE plpgsql
AS $$
DECLARE
    v_before bigint[] := array_fill(NULL::bigint, ARRAY[cardinality(p_kinds)]);
    v_accepted boolean[] := array_fill(false, ARRAY[cardinality(p_kinds)]);
    v_last bigint[];
    v_highest bigint;
    v_moved record;
    v_idx integer;
    v_version bigint;
BEGIN
    -- Step 1.
    INSERT INTO aether_heads (actor_kind, actor_id, version)
    SELECT t.kind, t.id, 0
    FROM unnest(p_kinds, p_ids, p_expected) WITH ORDINALITY AS t(kind, id, expected, idx)
    WHERE t.expected <= 0
    ORDER BY t.idx
    ON CONFLICT DO NOTHING;

    -- Step 2.
    FOR v_moved IN
        UPDATE aether_heads AS heads
        SET version = heads.version + a.count
        FROM unnest(p_kinds, p_ids, p_expected, p_counts) WITH ORDINALITY
            AS a(kind, id, expected, count, idx)
        WHERE heads.actor_kind = a.kind AND heads.actor_id = a.id
          AND (a.expected < 0 OR heads.version = a.expected)
        RETURNING a.idx, heads.version - a.count AS before
    LOOP
        v_before[v_moved.idx] := v_moved.before;
        v_accepted[v_moved.idx] := true;
    END LOOP;

    -- Step 3.
    FOR v_idx IN 1 .. cardinality(p_kinds) LOOP
        CONTINUE WHEN v_accepted[v_idx];
        SELECT heads.version INTO v_version
        FROM aether_heads AS heads
        WHERE heads.actor_kind = p_kinds[v_idx] AND heads.actor_id = p_ids[v_idx]
        FOR UPDATE;
        v_before[v_idx] := coalesce(v_version, 0);
        IF v_version IS NOT NULL AND p_expected[v_idx] = v_version THEN
            UPDATE aether_heads AS heads
            SET version = v_version + p_counts[v_idx]
            WHERE heads.actor_kind = p_kinds[v_idx] AND heads.actor_id = p_ids[v_idx];
            v_accepted[v_idx] := true;
        END IF;
    END LOOP;

    IF true = ANY (v_accepted) THEN
        -- Step 4.
        PERFORM pg_advisory_xact_lock(p_lock_key);

        WITH appends AS (
            SELECT a.idx, a.kind, a.id, a.before
            FROM unnest(p_kinds, p_ids, v_before, v_accepted)
                WITH ORDINALITY AS a(kind, id, before, accepted, idx)
            WHERE a.accepted
        ), inserted AS (
            INSERT INTO aether_events (
                actor_kind, actor_id, version, event_type, schema_version, payload,
                occurred_at, command_id, correlation_id, causation_id, node, reply)
            SELECT a.kind, a.id, a.before + e.event_offset, e.event_type, e.schema_version,
                   e.payload, e.occurred_at, e.command_id, e.correlation_id, e.causation_id,
                   e.node, e.reply
            FROM unnest(
                p_event_append, p_event_offset, p_types, p_schema_versions, p_payloads,
                p_occurred_at, p_command_ids, p_correlation_ids, p_causation_ids, p_nodes,
                p_replies)
                AS e(append_idx, event_offset, event_type, schema_version, payload,
                     occurred_at, command_id, correlation_id, causation_id, node, reply)
            JOIN appends AS a ON a.idx = e.append_idx
            -- Positions of one actor grow with its versions.
            ORDER BY e.append_idx, e.event_offset
            RETURNING actor_kind, actor_id, position
        ), last_per_append AS (
            SELECT a.idx, max(i.position) AS last_position
            FROM appends AS a
            JOIN inserted AS i ON i.actor_kind = a.kind AND i.actor_id = a.id
            GROUP BY a.idx
        )
        SELECT array_agg(l.last_position ORDER BY t.idx), max(l.last_position)
        INTO v_last, v_highest
        FROM generate_series(1, cardinality(p_kinds)) AS t(idx)
        LEFT JOIN last_per_append AS l ON l.idx = t.idx;

        -- Step 5.
        PERFORM pg_notify(p_channel, v_highest::text);
    END IF;

    RETURN QUERY
    SELECT r.version_before, r.last_position
    FROM unnest(v_before, coalesce(v_last, array_fill(NULL::bigint, ARRAY[cardinality(p_kinds)])))
        WITH ORDINALITY AS r(version_before, last_position, idx)
    ORDER BY r.idx;
END;
$$;
