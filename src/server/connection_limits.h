// Caps on open connections, in total and per client address: a client that
// opens thousands of sockets meets its own cap, not everyone's.
//
// Thread-safe.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <string>

namespace tessera::server {

class ConnectionLimits {
 public:
  ConnectionLimits(size_t max_total, size_t max_per_address) : max_total_(max_total), max_per_address_(max_per_address) {}

  // Holds one connection's place until destroyed; empty when refused.
  class Slot {
   public:
    Slot() = default;
    Slot(ConnectionLimits* owner, std::string address) : owner_(owner), address_(std::move(address)) {}
    Slot(Slot&& other) noexcept : owner_(other.owner_), address_(std::move(other.address_)) { other.owner_ = nullptr; }
    Slot& operator=(Slot&&) = delete;
    ~Slot();
    explicit operator bool() const { return owner_ != nullptr; }

   private:
    ConnectionLimits* owner_ = nullptr;
    std::string address_;
  };

  // A slot, or an empty one when the total or this address's cap is reached.
  Slot Acquire(const std::string& address);
  size_t open();

 private:
  void Release(const std::string& address);

  const size_t max_total_;
  const size_t max_per_address_;
  std::mutex mutex_;
  size_t total_ = 0;
  std::map<std::string, size_t> per_address_;
};

}  // namespace tessera::server
