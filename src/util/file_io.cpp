#include "util/file_io.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/fd_io.h"

namespace tessera {

namespace {

// The file opened for reading, and its size. kNotFound when it does not exist.
Result<int> OpenForReading(const std::string& path, struct stat* info) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int error = errno;
    std::string message = "cannot open " + path + ": " + std::strerror(error);
    return error == ENOENT ? Status(StatusCode::kNotFound, message) : IoError(message);
  }
  if (::fstat(fd, info) != 0) {
    std::string message = "cannot stat " + path + ": " + std::strerror(errno);
    ::close(fd);
    return IoError(message);
  }
  return fd;
}

}  // namespace

Result<std::vector<uint8_t>> ReadFileBytes(const std::string& path, uint64_t max_bytes) {
  struct stat info {};
  Result<int> opened = OpenForReading(path, &info);
  if (!opened.ok()) return opened.status();
  const int fd = *opened;
  if (static_cast<uint64_t>(info.st_size) > max_bytes) {
    ::close(fd);
    return LimitError(path + " is " + std::to_string(info.st_size) + " bytes, over the limit of " +
                      std::to_string(max_bytes));
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(info.st_size));
  Result<size_t> got = ReadFull(fd, bytes.data(), bytes.size());
  ::close(fd);
  if (!got.ok()) return Status(StatusCode::kIo, "reading " + path + ": " + got.status().message());
  bytes.resize(*got);
  return bytes;
}

Result<MappedFile> MappedFile::Open(const std::string& path) {
  struct stat info {};
  Result<int> opened = OpenForReading(path, &info);
  if (!opened.ok()) return opened.status();
  const int fd = *opened;
  const size_t size = static_cast<size_t>(info.st_size);
  if (size == 0) {
    ::close(fd);
    return MappedFile(nullptr, 0);
  }
  void* mapped = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
  const int error = errno;
  ::close(fd);  // the mapping keeps the file
  if (mapped == MAP_FAILED) return IoError("cannot map " + path + ": " + std::strerror(error));
  return MappedFile(static_cast<const uint8_t*>(mapped), size);
}

MappedFile::MappedFile(MappedFile&& other) noexcept : data_(other.data_), size_(other.size_) {
  other.data_ = nullptr;
  other.size_ = 0;
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
    data_ = other.data_;
    size_ = other.size_;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

Status WriteFileAtomically(const std::string& path, std::span<const uint8_t> bytes) {
  std::string temp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("cannot create " + temp + ": " + std::strerror(errno));
  Status written = WriteFull(fd, bytes);
  if (written.ok() && ::fsync(fd) != 0) written = IoError("fsync " + temp + ": " + std::strerror(errno));
  if (::close(fd) != 0 && written.ok()) written = IoError("close " + temp + ": " + std::strerror(errno));
  if (written.ok() && ::rename(temp.c_str(), path.c_str()) != 0) {
    written = IoError("rename " + temp + " to " + path + ": " + std::strerror(errno));
  }
  if (!written.ok()) {
    ::unlink(temp.c_str());
    return Status(written.code(), "writing " + path + ": " + written.message());
  }
  return Status::Ok();
}

}  // namespace tessera
