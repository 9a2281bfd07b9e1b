/**
 * The migrations, in order. Listed by hand (not globbed) so that tsx, vitest and a bundled build all find them.
 */
import * as Migrator from "@effect/sql/Migrator"
import EventStore from "./0001_event_store.js"

export const loader = Migrator.fromRecord({
  "0001_event_store": EventStore
})
