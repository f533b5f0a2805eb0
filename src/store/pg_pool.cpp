#include "store/pg_pool.h"

namespace tessera::store::pg {

PgPool::PgPool(std::string conninfo, size_t max_connections)
    : conninfo_(std::move(conninfo)), max_connections_(max_connections == 0 ? 1 : max_connections) {}

PgPool::Lease::~Lease() {
  if (pool_ != nullptr && connection_ != nullptr) pool_->Return(std::move(connection_));
}

Result<PgPool::Lease> PgPool::Acquire(std::string_view operation) {
  {
    std::unique_lock lock(mutex_);
    returned_.wait(lock, [&] { return !idle_.empty() || open_ < max_connections_; });
    if (!idle_.empty()) {
      std::unique_ptr<PgConnection> connection = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(connection));
    }
    ++open_;  // reserved while connecting, outside the lock
  }
  auto connected = PgConnection::Connect(conninfo_);
  if (!connected.ok()) {
    {
      std::lock_guard lock(mutex_);
      --open_;
    }
    returned_.notify_one();
    return Status(connected.status().code(), std::string(operation) + ": " + connected.status().message());
  }
  return Lease(this, std::move(connected).value());
}

void PgPool::Return(std::unique_ptr<PgConnection> connection) {
  {
    std::lock_guard lock(mutex_);
    if (connection->Reusable()) {
      idle_.push_back(std::move(connection));
    } else {
      --open_;
    }
  }
  // Closed (when not reusable) outside the lock.
  connection.reset();
  returned_.notify_one();
}

}  // namespace tessera::store::pg
