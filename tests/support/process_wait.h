// Waiting for a process to exit without polling a clock: a pidfd becomes
// readable once the process has exited (Linux >= 5.3). For processes that are
// not the test's children (a server's generator), whose exit a test cannot wait for.
#pragma once

#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

namespace tessera::test {

// True once `pid` has exited (or never existed), false when it still runs after `timeout`.
inline bool WaitProcessGone(int pid, std::chrono::milliseconds timeout) {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return errno == ESRCH;
  pollfd entry{fd, POLLIN, 0};
  int ready = ::poll(&entry, 1, static_cast<int>(timeout.count()));
  ::close(fd);
  return ready > 0;
}

}  // namespace tessera::test
