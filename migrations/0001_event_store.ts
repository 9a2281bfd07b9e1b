/**
 * The event store: append-only events with a per-stream hash chain (encoding: src/eventstore/HashChain.ts),
 * stream heads (the version and hash of each stream's last event, locked by appends and checked by the audit),
 * lookup keys and wrapped per-account data keys.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"

export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  // Stream ids and lookup keys are opaque ASCII; the "C" collation makes their order byte order, cheap to
  // compare, and the same in Postgres and in the audit.
  yield* sql`
    CREATE TABLE streams (
      stream_id text COLLATE "C" PRIMARY KEY,
      version integer NOT NULL CHECK (version >= 1),
      head_hash text NOT NULL
    )`

  yield* sql`
    CREATE TABLE events (
      position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      stream_id text COLLATE "C" NOT NULL,
      version integer NOT NULL CHECK (version >= 1),
      type text NOT NULL,
      payload json NOT NULL,
      recorded_at timestamptz NOT NULL,
      prev_hash text NOT NULL,
      hash text NOT NULL,
      CONSTRAINT events_stream_version UNIQUE (stream_id, version)
    )`

  // Append-only by default: changing history needs a deliberate ALTER TABLE ... DISABLE TRIGGER, and even then
  // the hash chain shows it.
  yield* sql`
    CREATE FUNCTION tessera_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
      RAISE EXCEPTION USING ERRCODE = 'TSAO1', MESSAGE = 'tessera: events are append-only';
    END
    $fn$`
  yield* sql`
    CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION tessera_events_append_only()`
  yield* sql`
    CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_events_append_only()`

  yield* sql`
    CREATE TABLE lookups (
      kind text COLLATE "C" NOT NULL,
      key text COLLATE "C" NOT NULL,
      stream_id text COLLATE "C" NOT NULL,
      PRIMARY KEY (kind, key)
    )`

  yield* sql`
    CREATE TABLE data_keys (
      stream_id text COLLATE "C" PRIMARY KEY,
      wrapped text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    )`
})
