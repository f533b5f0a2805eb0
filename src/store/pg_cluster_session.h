// The PostgreSQL ClusterSession (cluster_store.h): one connection of its own,
// never one of the store's pool, since what it holds (its LISTENs, the reaper's
// advisory lock) lasts exactly as long as the connection and a pooled one is
// handed from caller to caller.
//
// Wait polls the connection's socket; notifications that arrived while another
// statement ran on it (HoldReaperLock's) are kept by libpq and returned first.
// When the connection is lost, Wait opens a new one, LISTENs again and returns
// at once with no notifications: connections() has gone up, the reaper lock is
// no longer held, and what was sent meanwhile was missed, so the caller looks
// at the queue itself.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "store/cluster_store.h"
#include "store/pg_connection.h"
#include "util/status.h"

namespace tessera::store::pg {

// The reaper's advisory lock (pg_try_advisory_lock): one key for every server
// of a database, "tessera" in ASCII then 1, beside the schema lock's "tessera" 0
// (pg_migrations.cpp), so both are recognisable in pg_locks.
inline constexpr int64_t kReaperLock = 0x7465737365726101;
// (0x7465737365726102 numbers job_events in commit order: migration 3 takes it
// in its trigger, pg_migrations.cpp.)

class PgClusterSession final : public ClusterSession {
 public:
  // Connects to `conninfo` and LISTENs on `channels`. kUnavailable when it cannot.
  static Result<std::unique_ptr<PgClusterSession>> Open(const std::string& conninfo, std::vector<std::string> channels);

  Result<std::vector<Notification>> Wait(std::chrono::milliseconds timeout) override;
  // True at once when this connection already took the lock.
  Result<bool> HoldReaperLock() override;
  Status ReleaseReaperLock() override;
  int64_t connections() const override { return connections_; }

 private:
  PgClusterSession(std::string conninfo, std::vector<std::string> channels)
      : conninfo_(std::move(conninfo)), channels_(std::move(channels)) {}

  // Opens a new connection and LISTENs on every channel; what the old one held
  // is forgotten.
  Status Connect();

  const std::string conninfo_;
  const std::vector<std::string> channels_;
  std::unique_ptr<PgConnection> connection_;  // null after a failed reconnect
  bool holds_reaper_lock_ = false;
  int64_t connections_ = 0;
};

}  // namespace tessera::store::pg
