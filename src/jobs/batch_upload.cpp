#include "jobs/batch_upload.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <span>

#include "util/failpoint.h"
#include "util/fd_io.h"
#include "util/uuid.h"

namespace tessera::jobs {
namespace {

constexpr size_t kMaxFieldBytes = 4096;

// A display-safe version of the client's file name (kept only for listings).
std::string CleanName(const std::string& name) {
  std::string out;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-';
    out += ok ? c : '_';
  }
  while (!out.empty() && out.front() == '.') out.erase(out.begin());
  if (out.size() > 100) out = out.substr(out.size() - 100);
  return out.empty() ? "image" : out;
}

std::string Stem(const std::string& name) {
  size_t dot = name.rfind('.');
  return dot == std::string::npos || dot == 0 ? name : name.substr(0, dot);
}

}  // namespace

std::string BatchIncompleteMarker(const std::string& node_id) { return ".incomplete-" + node_id; }

bool IsSafeBatchId(const std::string& text) {
  if (text.empty() || text.size() > 64) return false;
  for (char c : text) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<BatchUploadWriter> BatchUploadWriter::Start(const std::string& data_dir, const std::string& game_id,
                                                   const std::string& node_id) {
  if (!IsSafeBatchId(game_id)) return InvalidError("game_id may use letters, digits, '_' and '-' (64 at most)");
  std::string batch_id = NewUuidV4();
  std::string dir = data_dir + "/games/" + game_id + "/batches/" + batch_id;
  std::error_code error;
  std::filesystem::create_directories(dir + "/originals", error);
  if (!error) std::filesystem::create_directories(dir + "/results", error);
  if (error) return IoError("cannot create " + dir + ": " + error.message());
  int marker = ::open((dir + "/" + BatchIncompleteMarker(node_id)).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (marker < 0) {
    const std::string why = std::strerror(errno);
    std::filesystem::remove_all(dir, error);
    return IoError("cannot mark " + dir + " as being uploaded: " + why);
  }
  ::close(marker);
  return BatchUploadWriter(game_id, std::move(batch_id), std::move(dir), node_id);
}

BatchUploadWriter::BatchUploadWriter(std::string game_id, std::string batch_id, std::string dir, std::string node_id)
    : game_id_(std::move(game_id)), batch_id_(std::move(batch_id)), dir_(std::move(dir)), node_id_(std::move(node_id)) {}

BatchUploadWriter::BatchUploadWriter(BatchUploadWriter&& other) noexcept
    : game_id_(std::move(other.game_id_)),
      batch_id_(std::move(other.batch_id_)),
      dir_(std::move(other.dir_)),
      node_id_(std::move(other.node_id_)),
      images_(std::move(other.images_)),
      fields_(std::move(other.fields_)),
      field_name_(std::move(other.field_name_)),
      in_file_(other.in_file_),
      fd_(other.fd_),
      bytes_(other.bytes_),
      error_(std::move(other.error_)),
      committed_(other.committed_) {
  other.fd_ = -1;
  other.dir_.clear();  // the moved-from writer removes nothing
}

BatchUploadWriter::~BatchUploadWriter() {
  CloseFile();
  if (committed_ || dir_.empty()) return;
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

bool BatchUploadWriter::BeginPart(const std::string& name, const std::string& filename) {
  CloseFile();
  if (!error_.empty()) return false;
  field_name_ = name;
  if (filename.empty()) {
    in_file_ = false;
    fields_[field_name_].clear();
    return true;
  }
  in_file_ = true;
  NewBatchImage image;
  image.image_id = NewUuidV4();
  image.original_name = filename;
  char prefix[16];
  std::snprintf(prefix, sizeof prefix, "%05zu_", images_.size());
  image.input_path = dir_ + "/originals/" + prefix + CleanName(filename);
  image.result_name = std::string(prefix) + Stem(CleanName(filename));
  if (FailpointHit("upload.write")) {
    return Fail("storing image " + std::to_string(images_.size() + 1) + " (" + filename + "): injected write failure");
  }
  fd_ = ::open(image.input_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) return Fail("storing image " + filename + ": " + std::strerror(errno));
  images_.push_back(std::move(image));
  return true;
}

bool BatchUploadWriter::Data(const char* data, size_t size) {
  if (!error_.empty()) return false;
  if (!in_file_) {
    std::string& field = fields_[field_name_];
    if (field.size() + size > kMaxFieldBytes) return Fail("form field " + field_name_ + " is longer than 4096 bytes");
    field.append(data, size);
    return true;
  }
  Status written = WriteFull(fd_, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data), size));
  if (!written.ok()) return Fail("storing image " + images_.back().original_name + ": " + written.message());
  bytes_ += size;
  return true;
}

bool BatchUploadWriter::Finish() {
  CloseFile();
  return error_.empty();
}

std::string BatchUploadWriter::Field(const std::string& name) const {
  auto it = fields_.find(name);
  return it == fields_.end() ? "" : it->second;
}

NewBatch BatchUploadWriter::TakeBatch(const std::string& params_json, const std::string& extension,
                                      const std::string& webhook_url, const std::string& client) {
  NewBatch batch;
  batch.batch_id = batch_id_;
  batch.game_id = game_id_;
  batch.params_json = params_json;
  batch.results_dir = dir_ + "/results";
  batch.webhook_url = webhook_url;
  batch.client = client;
  batch.images = std::move(images_);
  for (auto& image : batch.images) image.result_name += extension;
  images_.clear();
  return batch;
}

void BatchUploadWriter::Commit() {
  committed_ = true;
  ::unlink((dir_ + "/" + BatchIncompleteMarker(node_id_)).c_str());
}

bool BatchUploadWriter::Fail(std::string message) {
  if (error_.empty()) error_ = std::move(message);
  CloseFile();
  return false;
}

void BatchUploadWriter::CloseFile() {
  if (fd_ >= 0) {
    if (::fsync(fd_) != 0 && error_.empty()) error_ = std::string("storing an image: ") + std::strerror(errno);
    ::close(fd_);
    fd_ = -1;
  }
}

}  // namespace tessera::jobs
