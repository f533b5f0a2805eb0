// Connections to one PostgreSQL database, shared by the store's callers: each
// call borrows one for its length (a transaction never spans two calls), so
// lanes, request threads and the webhook sender do not wait on each other's
// round trips. At most `max_connections` are open; a caller beyond that waits
// for one to come back. A connection that broke (the server restarted, the
// network dropped) or was left inside a transaction is closed instead of
// returned, and the next call opens a fresh one.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "store/pg_connection.h"
#include "util/status.h"

namespace tessera::store::pg {

class PgPool {
 public:
  PgPool(std::string conninfo, size_t max_connections);

  // A borrowed connection, given back when the lease goes out of scope.
  class Lease {
   public:
    Lease(PgPool* pool, std::unique_ptr<PgConnection> connection)
        : pool_(pool), connection_(std::move(connection)) {}
    ~Lease();
    Lease(Lease&& other) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    PgConnection& operator*() { return *connection_; }
    PgConnection* operator->() { return connection_.get(); }

   private:
    PgPool* pool_;
    std::unique_ptr<PgConnection> connection_;
  };

  // An idle connection, or a new one; kUnavailable (naming `operation`) when none can be
  // opened.
  Result<Lease> Acquire(std::string_view operation);

  const std::string& conninfo() const { return conninfo_; }

 private:
  void Return(std::unique_ptr<PgConnection> connection);

  const std::string conninfo_;
  const size_t max_connections_;
  std::mutex mutex_;
  std::condition_variable returned_;
  std::vector<std::unique_ptr<PgConnection>> idle_;
  size_t open_ = 0;  // idle and leased
};

}  // namespace tessera::store::pg
