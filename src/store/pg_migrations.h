// The PostgreSQL store's schema: numbered migrations compiled into the binary
// and applied at open, under a database-wide advisory lock so that servers
// starting together apply each step once.
//
// Several servers share one database and are upgraded one at a time, so steps
// are additive (new tables, new columns with defaults, new indexes): an older
// server keeps working on a newer schema, and opening one only logs it. A step
// that an older binary cannot live with is marked incompatible; a binary that
// does not know such a step refuses to open the database, saying which step
// and that it must be upgraded. These numbers are PostgreSQL's own: the SQLite
// store keeps its own history.
#pragma once

#include <string>

#include "store/pg_connection.h"
#include "util/status.h"

namespace tessera::store::pg {

// The newest step this build knows.
int LatestSchemaVersion();

// Applies the steps the database lacks, each in its own transaction recorded in
// schema_migrations; returns how many. kUnsupported when the database carries an
// incompatible step newer than this build.
Result<int> Migrate(PgConnection& connection, const std::string& where);

}  // namespace tessera::store::pg
