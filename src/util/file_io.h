// Whole-file reads and crash-safe writes.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "util/status.h"

namespace tessera {

// kNotFound when the file does not exist, kIo for other failures; kLimit when it
// is larger than `max_bytes`.
Result<std::vector<uint8_t>> ReadFileBytes(const std::string& path, uint64_t max_bytes = UINT64_MAX);

// A whole file mapped read-only (mmap, pages populated at once): what a large
// file that is only read gets instead of a copy (the plan cache's weights). The
// file must not be truncated in place while mapped (files written with
// WriteFileAtomically never are: they are replaced by a rename).
class MappedFile {
 public:
  // kNotFound when the file does not exist, kIo for other failures.
  static Result<MappedFile> Open(const std::string& path);
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  std::span<const uint8_t> bytes() const { return {data_, size_}; }

 private:
  MappedFile(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Writes to a temporary file in the same directory, fsyncs it and renames it over
// `path`: readers see the old file or the whole new one, never half of it.
Status WriteFileAtomically(const std::string& path, std::span<const uint8_t> bytes);

}  // namespace tessera
