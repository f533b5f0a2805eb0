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
#include "server/multipart_parser.h"
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

  bool BeginPart(const MultipartPart& header) {
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

// The marker of a batch folder whose upload has not committed yet; start-up
// clean-up removes folders that still have this node's marker.
std::string IncompleteMarker(const std::string& node_id) { return ".incomplete-" + node_id; }

// Receives a batch upload: each image part streams to its original's file; the
// batch is created in one transaction once all arrived. Until then the folder
// carries an incomplete marker; a refused or interrupted upload is removed whole.
class BatchUpload : public BodyConsumer {
 public:
  BatchUpload(JobServer::State& state, std::string game_id, std::string batch_id, std::string dir,
              const std::string& boundary)
      : state_(state),
        game_id_(std::move(game_id)),
        batch_id_(std::move(batch_id)),
        dir_(std::move(dir)),
        sink_(dir_ + "/originals"),
        parser_(boundary, MultipartCallbacks{[this](const MultipartPart& part) { return Check(sink_.BeginPart(part)); },
                                             [this](const char* data, size_t size) { return Check(sink_.Data(data, size)); },
                                             nullptr}) {}
  ~BatchUpload() override {
    if (committed_) return;
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  Status Consume(const char* data, size_t size) override { return parser_.Feed(data, size); }
  void Finish(const HttpRequest& request, HttpResponse& response) override;

 private:
  Status Check(bool ok) {
    if (ok) return Status::Ok();
    LogWarn("batch_upload_refused").Field("game_id", game_id_).Field("error", sink_.error());
    return IoError(sink_.error() + "; the whole upload was refused, nothing was created");
  }

  JobServer::State& state_;
  std::string game_id_, batch_id_, dir_;
  UploadSink sink_;
  MultipartParser parser_;
  bool committed_ = false;
};

void BatchUpload::Finish(const HttpRequest& request, HttpResponse& response) {
  if (Status ended = parser_.Finish(); !ended.ok()) return ReplyStatus(response, ended);
  if (Status stored = Check(sink_.Finish()); !stored.ok()) return ReplyStatus(response, stored);
  if (sink_.images().empty()) {
    return ReplyError(response, 400, "no images: send them as multipart file fields (any field name)");
  }
  auto choice = ResolveUpscaleChoice(state_, sink_.Field("model"), sink_.Field("scale"), sink_.Field("format"));
  if (!choice.ok()) return ReplyStatus(response, choice.status());
  std::string webhook = sink_.Field("webhook");
  if (!webhook.empty() && webhook.rfind("http://", 0) != 0 && webhook.rfind("https://", 0) != 0) {
    return ReplyError(response, 400, "webhook must be an http:// or https:// URL");
  }
  jobs::NewBatch batch;
  batch.batch_id = batch_id_;
  batch.game_id = game_id_;
  batch.params_json = choice->params_json;
  batch.results_dir = dir_ + "/results";
  batch.webhook_url = webhook;
  batch.client = request.remote_addr;
  batch.images = std::move(sink_.images());
  for (auto& image : batch.images) image.result_name += choice->extension;
  auto created = state_.batches->Create(batch);
  if (!created.ok()) {
    return ReplyStatus(response, Status(created.status().code(), "creating the batch failed, nothing was created: " +
                                                                      created.status().message()));
  }
  committed_ = true;
  ::unlink((dir_ + "/" + IncompleteMarker(state_.config.node_id)).c_str());
  LogInfo("batch_uploaded").Field("batch_id", batch_id_).Field("game_id", game_id_).Field("images", batch.images.size())
      .Field("bytes", sink_.bytes()).Field("client", request.remote_addr);
  response.SetHeader("Location", "/images/batches/" + batch_id_ + "/status");
  ReplyJson(response, 202,
            json{{"batch_id", batch_id_},
                 {"game_id", game_id_},
                 {"total_images", created->total_images},
                 {"status", "PENDING"},
                 {"status_url", "/images/batches/" + batch_id_ + "/status"},
                 {"images_url", "/images/batches/" + batch_id_ + "/images"}}
                .dump());
}

Result<std::unique_ptr<BodyConsumer>> StartBatchUpload(JobServer::State& state, const HttpRequest& head) {
  const std::string& game_id = head.captures[0];
  if (!IsSafeId(game_id)) return InvalidError("game_id may use letters, digits, '_' and '-' (64 at most)");
  auto boundary = MultipartBoundary(head.Header("Content-Type"));
  if (!boundary) return InvalidError("send the images as multipart/form-data file fields");
  std::string batch_id = NewUuidV4();
  std::string dir = BatchDir(state, game_id, batch_id);
  std::error_code error;
  std::filesystem::create_directories(dir + "/originals", error);
  if (!error) std::filesystem::create_directories(dir + "/results", error);
  if (error) return IoError("cannot create " + dir + ": " + error.message());
  int marker = ::open((dir + "/" + IncompleteMarker(state.config.node_id)).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (marker < 0) {
    std::filesystem::remove_all(dir, error);
    return IoError("cannot mark " + dir + " as being uploaded: " + std::strerror(errno));
  }
  ::close(marker);
  return std::unique_ptr<BodyConsumer>(new BatchUpload(state, game_id, batch_id, dir, *boundary));
}

struct LoadedBatch {
  store::Batch batch;
  std::vector<store::BatchImageRow> rows;
};

bool LoadBatch(JobServer::State& state, const std::string& id, HttpResponse& response, LoadedBatch* out) {
  auto batch = state.batch_store->GetBatch(id);
  if (!batch.ok()) {
    if (batch.status().code() == StatusCode::kNotFound) {
      ReplyError(response, 404, "no batch " + id);
    } else {
      ReplyStatus(response, batch.status());
    }
    return false;
  }
  auto rows = state.batch_store->ListBatchImages(id);
  if (!rows.ok()) {
    ReplyStatus(response, rows.status());
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

void BatchStatus(JobServer::State& state, const HttpRequest& request, HttpResponse& response) {
  LoadedBatch loaded;
  if (!LoadBatch(state, request.captures[0], response, &loaded)) return;
  ReplyJson(response, 200, BatchStatusJson(loaded.batch, loaded.rows));
}

void BatchImages(JobServer::State& state, const HttpRequest& request, HttpResponse& response) {
  LoadedBatch loaded;
  if (!LoadBatch(state, request.captures[0], response, &loaded)) return;
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

void ImageResult(JobServer::State& state, const HttpRequest& request, HttpResponse& response) {
  LoadedBatch loaded;
  if (!LoadBatch(state, request.captures[0], response, &loaded)) return;
  std::string image_id = request.captures[1];
  for (const auto& row : loaded.rows) {
    if (row.image.id != image_id) continue;
    if (jobs::ImageStatusOf(row) != jobs::ImageStatus::kCompleted || !IsSafeFileName(row.result_filename)) {
      return ReplyError(response, 404, "image " + image_id + " has no result (yet)");
    }
    return ServeFileAt(BatchDir(state, loaded.batch.game_id, loaded.batch.id) + "/results", row.result_filename,
                       request, response);
  }
  ReplyError(response, 404, "no image " + image_id + " in batch " + loaded.batch.id);
}

void RetryBatch(JobServer::State& state, const HttpRequest& request, HttpResponse& response) {
  std::string id = request.captures[0];
  auto retried = state.batches->RetryFailed(id);
  if (!retried.ok()) return ReplyStatus(response, retried.status());
  LoadedBatch loaded;
  if (!LoadBatch(state, id, response, &loaded)) return;
  json answer = json::parse(BatchStatusJson(loaded.batch, loaded.rows));
  answer["retried"] = *retried;
  ReplyJson(response, 202, answer.dump());
}

}  // namespace

void RegisterBatchRoutes(JobServer::State& state) {
  state.router.AddStreamed(
      "POST", "/images/games/{}/batch-upload",
      [&state](const HttpRequest& head) { return StartBatchUpload(state, head); },
      static_cast<uint64_t>(state.config.max_upload_mb * 1024 * 1024));
  state.router.Add("GET", "/images/batches/{}/status",
                   [&state](const HttpRequest& q, HttpResponse& r) { BatchStatus(state, q, r); });
  state.router.Add("GET", "/images/batches/{}/images",
                   [&state](const HttpRequest& q, HttpResponse& r) { BatchImages(state, q, r); });
  state.router.Add("GET", "/images/batches/{}/images/{}/result",
                   [&state](const HttpRequest& q, HttpResponse& r) { ImageResult(state, q, r); });
  state.router.Add("POST", "/images/batches/{}/retry",
                   [&state](const HttpRequest& q, HttpResponse& r) { RetryBatch(state, q, r); });
}

}  // namespace tessera::server
