// A file being received from a client: written under a temporary name that
// carries this server's node id (so start-up clean-up removes only its own
// leftovers: several servers may share a folder), moved into place once the
// request commits, removed when it does not.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "util/status.h"

namespace tessera::jobs {

// ".upload-<node_id>-": the start of this node's temporary upload names.
std::string TempUploadPrefix(const std::string& node_id);

class UploadFile {
 public:
  static Result<std::unique_ptr<UploadFile>> Create(const std::string& dir, const std::string& node_id);
  ~UploadFile();  // removes the file unless committed
  UploadFile(const UploadFile&) = delete;
  UploadFile& operator=(const UploadFile&) = delete;

  Status Write(const char* data, size_t size);
  // Empties the file (a better candidate part arrived).
  Status Restart();
  // fsync, then rename to `final_path` (same filesystem).
  Status Commit(const std::string& final_path);
  uint64_t bytes() const { return bytes_; }
  const std::string& path() const { return path_; }

 private:
  UploadFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_ = -1;
  uint64_t bytes_ = 0;
  bool committed_ = false;
};

}  // namespace tessera::jobs
