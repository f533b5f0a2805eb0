#include "jobs/upload_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <span>

#include "util/fd_io.h"
#include "util/uuid.h"

namespace tessera::jobs {

std::string TempUploadPrefix(const std::string& node_id) { return ".upload-" + node_id + "-"; }

Result<std::unique_ptr<UploadFile>> UploadFile::Create(const std::string& dir, const std::string& node_id) {
  std::string path = dir + "/" + TempUploadPrefix(node_id) + NewUuidV4() + ".tmp";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("cannot create " + path + ": " + std::strerror(errno));
  return std::unique_ptr<UploadFile>(new UploadFile(path, fd));
}

UploadFile::~UploadFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(path_.c_str());
}

Status UploadFile::Write(const char* data, size_t size) {
  Status written = WriteFull(fd_, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data), size));
  if (!written.ok()) return IoError("storing the upload: " + written.message());
  bytes_ += size;
  return Status::Ok();
}

Status UploadFile::Restart() {
  if (::ftruncate(fd_, 0) != 0 || ::lseek(fd_, 0, SEEK_SET) != 0) {
    return IoError(std::string("storing the upload: ") + std::strerror(errno));
  }
  bytes_ = 0;
  return Status::Ok();
}

Status UploadFile::Commit(const std::string& final_path) {
  if (::fsync(fd_) != 0) return IoError(std::string("storing the upload: ") + std::strerror(errno));
  ::close(fd_);
  fd_ = -1;
  if (::rename(path_.c_str(), final_path.c_str()) != 0) {
    return IoError("storing the upload as " + final_path + ": " + std::strerror(errno));
  }
  committed_ = true;
  return Status::Ok();
}

}  // namespace tessera::jobs
