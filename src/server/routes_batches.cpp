// Image batches (seed 004):
//   POST /images/games/{game_id}/batch-upload   multipart, any number of images
//   GET  /images/batches/{batch_id}/status      "5/30 images processed", counts, can_retry
//   GET  /images/batches/{batch_id}/images      each image: status, attempts, error, result URL
//   GET  /images/batches/{batch_id}/images/{image_id}/result
//   POST /images/batches/{batch_id}/retry       failed images, now
//
// Uploads are streamed to disk part by part, never held whole in memory. A
// failure while storing them refuses the whole upload: what was written is
// removed and nothing is created (docs/batches.md).
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "jobs/batch_state.h"
#include "jobs/job_state.h"
#include "server/server_state.h"
#include "util/failpoint.h"
#include "util/fd_io.h"
#include "util/log.h"
#include "util/uuid.h"

namespace tessera::server {
namespace {

using nlohmann::json;

bool IsSafeId(const std::string& text) {
  if (text.empty() || text.size() > 64) return false;
  for (char c : text) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string BatchDir(const JobServer::State& state, const std::string& game_id, const std::string& batch_id) {
  return state.config.data_dir + "/games/" + game_id + "/batches/" + batch_id;
}

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

// Receives the multipart parts as they arrive.
class UploadSink {
 public:
  UploadSink(std::string originals_dir) : originals_dir_(std::move(originals_dir)) {}
  ~UploadSink() { CloseFile(); }

  bool BeginPart(const httplib::MultipartFormData& header) {
    CloseFile();
    if (!error_.empty()) return false;
    field_.clear();
    field_name_ = header.name;
    if (header.filename.empty()) {
      in_file_ = false;
      return true;
    }
    in_file_ = true;
    jobs::NewBatchImage image;
    image.image_id = NewUuidV4();
    image.original_name = header.filename;
    char prefix[16];
    std::snprintf(prefix, sizeof prefix, "%05zu_", images_.size());
    image.input_path = originals_dir_ + "/" + prefix + CleanName(header.filename);
    image.result_name = std::string(prefix) + Stem(CleanName(header.filename));
    if (FailpointHit("upload.write")) return Fail("storing image " + std::to_string(images_.size() + 1) +
                                                   " (" + header.filename + "): injected write failure");
    fd_ = ::open(image.input_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) return Fail("storing image " + header.filename + ": " + std::strerror(errno));
    images_.push_back(std::move(image));
    return true;
  }

  bool Data(const char* data, size_t size) {
    if (!error_.empty()) return false;
    if (!in_file_) {
      if (field_.size() + size > 4096) return Fail("form field " + field_name_ + " is longer than 4096 bytes");
      field_.append(data, size);
      fields_[field_name_] = field_;
      return true;
    }
    Status written = WriteFull(fd_, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data), size));
    if (!written.ok()) return Fail("storing image " + images_.back().original_name + ": " + written.message());
    bytes_ += size;
    return true;
  }

  bool Finish() {
    CloseFile();
    return error_.empty();
  }

  const std::string& error() const { return error_; }
  std::vector<jobs::NewBatchImage>& images() { return images_; }
  std::string Field(const std::string& name) const {
    auto it = fields_.find(name);
    return it == fields_.end() ? "" : it->second;
  }
  uint64_t bytes() const { return bytes_; }

 private:
  bool Fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
    CloseFile();
    return false;
  }
  void CloseFile() {
    if (fd_ >= 0) {
      if (::fsync(fd_) != 0 && error_.empty()) error_ = std::string("storing an image: ") + std::strerror(errno);
      ::close(fd_);
      fd_ = -1;
    }
  }

  std::string originals_dir_;
  std::vector<jobs::NewBatchImage> images_;
  std::map<std::string, std::string> fields_;
  std::string field_name_;
  std::string field_;
  bool in_file_ = false;
  int fd_ = -1;
  uint64_t bytes_ = 0;
  std::string error_;
};

void BatchUpload(JobServer::State& state, const httplib::Request& request, httplib::Response& response,
                 const httplib::ContentReader& content_reader) {
  std::string game_id = request.matches[1];
  if (!IsSafeId(game_id)) return ReplyError(response, 400, "game_id may use letters, digits, '_' and '-' (64 at most)");
  if (!request.is_multipart_form_data()) {
    return ReplyError(response, 400, "send the images as multipart/form-data file fields");
  }
  std::string batch_id = NewUuidV4();
  std::string dir = BatchDir(state, game_id, batch_id);
  std::error_code error;
  std::filesystem::create_directories(dir + "/originals", error);
  if (!error) std::filesystem::create_directories(dir + "/results", error);
  if (error) return ReplyError(response, 500, "cannot create " + dir + ": " + error.message());
  auto discard = [&] {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  };

  UploadSink sink(dir + "/originals");
  content_reader([&](const httplib::MultipartFormData& header) { return sink.BeginPart(header); },
                 [&](const char* data, size_t size) { return sink.Data(data, size); });
  if (!sink.Finish() || !sink.error().empty()) {
    discard();
    LogWarn("batch_upload_refused").Field("game_id", game_id).Field("error", sink.error());
    return ReplyError(response, 500, sink.error().empty() ? "the upload was interrupted; nothing was created"
                                                          : sink.error() + "; the whole upload was refused, nothing was created");
  }
  if (sink.images().empty()) {
    discard();
    return ReplyError(response, 400, "no images: send them as multipart file fields (any field name)");
  }
  auto choice = ResolveUpscaleChoice(state, sink.Field("model"), sink.Field("scale"), sink.Field("format"));
  if (!choice.ok()) {
    discard();
    return ReplyError(response, choice.status().code() == StatusCode::kInvalid ? 400 : 503, choice.status().message());
  }
  std::string webhook = sink.Field("webhook");
  if (!webhook.empty() && webhook.rfind("http://", 0) != 0 && webhook.rfind("https://", 0) != 0) {
    discard();
    return ReplyError(response, 400, "webhook must be an http:// or https:// URL");
  }
  jobs::NewBatch batch;
  batch.batch_id = batch_id;
  batch.game_id = game_id;
  batch.params_json = choice->params_json;
  batch.results_dir = dir + "/results";
  batch.webhook_url = webhook;
  batch.client = request.remote_addr;
  batch.images = std::move(sink.images());
  for (auto& image : batch.images) image.result_name += choice->extension;
  auto created = state.batches->Create(batch);
  if (!created.ok()) {
    discard();
    return ReplyError(response, 500, "creating the batch failed, nothing was created: " + created.status().message());
  }
  LogInfo("batch_uploaded").Field("batch_id", batch_id).Field("game_id", game_id).Field("images", batch.images.size())
      .Field("bytes", sink.bytes()).Field("client", request.remote_addr);
  response.set_header("Location", "/images/batches/" + batch_id + "/status");
  ReplyJson(response, 202,
            json{{"batch_id", batch_id},
                 {"game_id", game_id},
                 {"total_images", created->total_images},
                 {"status", "PENDING"},
                 {"status_url", "/images/batches/" + batch_id + "/status"},
                 {"images_url", "/images/batches/" + batch_id + "/images"}}
                .dump());
}

struct LoadedBatch {
  store::Batch batch;
  std::vector<store::BatchImageRow> rows;
};

bool LoadBatch(JobServer::State& state, const std::string& id, httplib::Response& response, LoadedBatch* out) {
  auto batch = state.batch_store->GetBatch(id);
  if (!batch.ok()) {
    ReplyError(response, batch.status().code() == StatusCode::kNotFound ? 404 : 500,
               batch.status().code() == StatusCode::kNotFound ? "no batch " + id : batch.status().message());
    return false;
  }
  auto rows = state.batch_store->ListBatchImages(id);
  if (!rows.ok()) {
    ReplyError(response, 500, rows.status().message());
    return false;
  }
  out->batch = *batch;
  out->rows = std::move(*rows);
  return true;
}

}  // namespace

std::string BatchStatusJson(const store::Batch& batch, const std::vector<store::BatchImageRow>& rows) {
  jobs::BatchSummary summary = jobs::SummarizeBatch(rows, batch.max_retries);
  return json{{"batch_id", batch.id},
              {"game_id", batch.game_id},
              {"status", jobs::BatchStatusName(summary.status)},
              {"progress", summary.ProcessedText()},
              {"failed", summary.FailedText()},
              {"percentage", static_cast<double>(static_cast<int64_t>(summary.percentage() * 100 + 0.5)) / 100},
              {"can_retry", summary.can_retry()},
              {"total_images", summary.total},
              {"counts",
               {{"PENDING", summary.pending},
                {"PROCESSING", summary.processing},
                {"COMPLETED", summary.completed},
                {"FAILED", summary.failed},
                {"RETRYING", summary.retrying}}},
              {"max_retries", batch.max_retries},
              {"images_url", "/images/batches/" + batch.id + "/images"}}
      .dump();
}

namespace {

void BatchStatus(JobServer::State& state, const httplib::Request& request, httplib::Response& response) {
  LoadedBatch loaded;
  if (!LoadBatch(state, request.matches[1], response, &loaded)) return;
  ReplyJson(response, 200, BatchStatusJson(loaded.batch, loaded.rows));
}

void BatchImages(JobServer::State& state, const httplib::Request& request, httplib::Response& response) {
  LoadedBatch loaded;
  if (!LoadBatch(state, request.matches[1], response, &loaded)) return;
  json images = json::array();
  for (const auto& row : loaded.rows) {
    jobs::ImageStatus status = jobs::ImageStatusOf(row);
    json image = {{"image_id", row.image.id},
                  {"position", row.image.position},
                  {"original_name", row.image.original_name},
                  {"status", jobs::ImageStatusName(status)},
                  {"attempts", row.image.attempts},
                  {"error", row.job_error.empty() ? json(nullptr) : json(row.job_error)},
                  {"job_id", row.image.job_id},
                  {"retry_at_ms", row.image.retry_at_ms > 0 ? json(row.image.retry_at_ms) : json(nullptr)},
                  {"result_url", status == jobs::ImageStatus::kCompleted
                                     ? json(state.config.host_base_url + "/images/batches/" + loaded.batch.id +
                                            "/images/" + row.image.id + "/result")
                                     : json(nullptr)}};
    images.push_back(image);
  }
  ReplyJson(response, 200, json{{"batch_id", loaded.batch.id}, {"images", images}}.dump());
}

void ImageResult(JobServer::State& state, const httplib::Request& request, httplib::Response& response) {
  LoadedBatch loaded;
  if (!LoadBatch(state, request.matches[1], response, &loaded)) return;
  std::string image_id = request.matches[2];
  for (const auto& row : loaded.rows) {
    if (row.image.id != image_id) continue;
    if (jobs::ImageStatusOf(row) != jobs::ImageStatus::kCompleted || !IsSafeFileName(row.result_filename)) {
      return ReplyError(response, 404, "image " + image_id + " has no result (yet)");
    }
    std::string path = BatchDir(state, loaded.batch.game_id, loaded.batch.id) + "/results/" + row.result_filename;
    return ServeFileAt(path, row.result_filename, request, response);
  }
  ReplyError(response, 404, "no image " + image_id + " in batch " + loaded.batch.id);
}

void RetryBatch(JobServer::State& state, const httplib::Request& request, httplib::Response& response) {
  std::string id = request.matches[1];
  auto retried = state.batches->RetryFailed(id);
  if (!retried.ok()) {
    int code = retried.status().code() == StatusCode::kNotFound ? 404
               : retried.status().code() == StatusCode::kInvalid ? 409
                                                                 : 500;
    return ReplyError(response, code, retried.status().message());
  }
  LoadedBatch loaded;
  if (!LoadBatch(state, id, response, &loaded)) return;
  json answer = json::parse(BatchStatusJson(loaded.batch, loaded.rows));
  answer["retried"] = *retried;
  ReplyJson(response, 202, answer.dump());
}

}  // namespace

void RegisterBatchRoutes(JobServer::State& state) {
  state.http.Post(R"(/images/games/([^/]+)/batch-upload)",
                  [&state](const httplib::Request& q, httplib::Response& r, const httplib::ContentReader& reader) {
                    BatchUpload(state, q, r, reader);
                  });
  state.http.Get(R"(/images/batches/([^/]+)/status)",
                 [&state](const httplib::Request& q, httplib::Response& r) { BatchStatus(state, q, r); });
  state.http.Get(R"(/images/batches/([^/]+)/images)",
                 [&state](const httplib::Request& q, httplib::Response& r) { BatchImages(state, q, r); });
  state.http.Get(R"(/images/batches/([^/]+)/images/([^/]+)/result)",
                 [&state](const httplib::Request& q, httplib::Response& r) { ImageResult(state, q, r); });
  state.http.Post(R"(/images/batches/([^/]+)/retry)",
                  [&state](const httplib::Request& q, httplib::Response& r) { RetryBatch(state, q, r); });
}

}  // namespace tessera::server
