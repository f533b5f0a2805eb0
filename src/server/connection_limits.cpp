#include "server/connection_limits.h"

namespace tessera::server {

ConnectionLimits::Slot::~Slot() {
  if (owner_ != nullptr) owner_->Release(address_);
}

ConnectionLimits::Slot ConnectionLimits::Acquire(const std::string& address) {
  std::lock_guard lock(mutex_);
  size_t& mine = per_address_[address];
  if (total_ >= max_total_ || mine >= max_per_address_) {
    if (mine == 0) per_address_.erase(address);
    return Slot();
  }
  ++total_;
  ++mine;
  return Slot(this, address);
}

void ConnectionLimits::Release(const std::string& address) {
  std::lock_guard lock(mutex_);
  --total_;
  auto it = per_address_.find(address);
  if (it != per_address_.end() && --it->second == 0) per_address_.erase(it);
}

size_t ConnectionLimits::open() {
  std::lock_guard lock(mutex_);
  return total_;
}

}  // namespace tessera::server
