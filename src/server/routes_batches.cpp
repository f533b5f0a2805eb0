// Image batches (seed 004):
//   POST /images/games/{game_id}/batch-upload   multipart, any number of images
//   GET  /images/batches/{batch_id}/status      "5/30 images processed", counts, can_retry
//   GET  /images/batches/{batch_id}/images      each image: status, attempts, error, result URL
//   GET  /images/batches/{batch_id}/images/{image_id}/result
//   POST /images/batches/{batch_id}/retry       failed images, now
//
// Uploads are streamed to disk part by part by the jobs layer
// (jobs/batch_upload.h), never held whole in memory. A failure while storing
// them refuses the whole upload: what was written is removed and nothing is
// created (docs/batches.md).
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "jobs/batch_state.h"
#include "jobs/batch_upload.h"
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

std::string BatchDir(const JobServer::State& state, const std::string& game_id, const std::string& batch_id) {
  return state.config.BatchRoot() + "/games/" + game_id + "/batches/" + batch_id;
}

// Receives a batch upload: the multipart parts go to the jobs layer's writer
// (jobs/batch_upload.h), which streams each image to its file; the batch is
// created in one transaction once all arrived. A refused or interrupted upload
// leaves nothing (the writer removes its folder).
class BatchUpload : public BodyConsumer {
 public:
  BatchUpload(JobServer::State& state, jobs::BatchUploadWriter writer, const std::string& boundary)
      : state_(state),
        writer_(std::move(writer)),
        parser_(boundary,
                MultipartCallbacks{
                    [this](const MultipartPart& part) { return Check(writer_.BeginPart(part.name, part.filename)); },
                    [this](const char* data, size_t size) { return Check(writer_.Data(data, size)); }, nullptr}) {}

  Status Consume(const char* data, size_t size) override { return parser_.Feed(data, size); }
  void Finish(const HttpRequest& request, HttpResponse& response) override;

 private:
  Status Check(bool ok) {
    if (ok) return Status::Ok();
    LogWarn("batch_upload_refused").Field("game_id", writer_.game_id()).Field("error", writer_.error());
    return IoError(writer_.error() + "; the whole upload was refused, nothing was created");
  }

  JobServer::State& state_;
  jobs::BatchUploadWriter writer_;
  MultipartParser parser_;
};

void BatchUpload::Finish(const HttpRequest& request, HttpResponse& response) {
  if (Status ended = parser_.Finish(); !ended.ok()) return ReplyStatus(response, ended);
  if (Status stored = Check(writer_.Finish()); !stored.ok()) return ReplyStatus(response, stored);
  if (writer_.image_count() == 0) {
    return ReplyError(response, 400, "no images: send them as multipart file fields (any field name)");
  }
  auto choice = ResolveUpscaleChoice(state_, writer_.Field("model"), writer_.Field("scale"), writer_.Field("format"));
  if (!choice.ok()) return ReplyStatus(response, choice.status());
  std::string webhook = writer_.Field("webhook");
  if (!webhook.empty() && webhook.rfind("http://", 0) != 0 && webhook.rfind("https://", 0) != 0) {
    return ReplyError(response, 400, "webhook must be an http:// or https:// URL");
  }
  const std::string batch_id = writer_.batch_id();
  const std::string game_id = writer_.game_id();
  jobs::NewBatch batch = writer_.TakeBatch(choice->params_json, choice->extension, webhook, request.remote_addr);
  auto created = state_.batches->Create(batch);
  if (!created.ok()) {
    return ReplyStatus(response, Status(created.status().code(), "creating the batch failed, nothing was created: " +
                                                                      created.status().message()));
  }
  writer_.Commit();
  LogInfo("batch_uploaded").Field("batch_id", batch_id).Field("game_id", game_id).Field("images", batch.images.size())
      .Field("bytes", writer_.bytes()).Field("client", request.remote_addr);
  response.SetHeader("Location", "/images/batches/" + batch_id + "/status");
  ReplyJson(response, 202,
            json{{"batch_id", batch_id},
                 {"game_id", game_id},
                 {"total_images", created->total_images},
                 {"status", "PENDING"},
                 {"status_url", "/images/batches/" + batch_id + "/status"},
                 {"images_url", "/images/batches/" + batch_id + "/images"}}
                .dump());
}

Result<std::unique_ptr<BodyConsumer>> StartBatchUpload(JobServer::State& state, const HttpRequest& head) {
  if (!jobs::IsSafeBatchId(head.captures[0])) {
    return InvalidError("game_id may use letters, digits, '_' and '-' (64 at most)");
  }
  auto boundary = MultipartBoundary(head.Header("Content-Type"));
  if (!boundary) return InvalidError("send the images as multipart/form-data file fields");
  Result<jobs::BatchUploadWriter> writer =
      jobs::BatchUploadWriter::Start(state.config.BatchRoot(), head.captures[0], state.config.node_id);
  if (!writer.ok()) return writer.status();
  return std::unique_ptr<BodyConsumer>(new BatchUpload(state, std::move(writer).value(), *boundary));
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
      static_cast<uint64_t>(state.config.max_upload_mb * 1024 * 1024))
      .submits_work = true;
  state.router.Add("GET", "/images/batches/{}/status",
                   [&state](const HttpRequest& q, HttpResponse& r) { BatchStatus(state, q, r); });
  state.router.Add("GET", "/images/batches/{}/images",
                   [&state](const HttpRequest& q, HttpResponse& r) { BatchImages(state, q, r); });
  state.router.Add("GET", "/images/batches/{}/images/{}/result",
                   [&state](const HttpRequest& q, HttpResponse& r) { ImageResult(state, q, r); });
  state.router.Add("POST", "/images/batches/{}/retry",
                   [&state](const HttpRequest& q, HttpResponse& r) { RetryBatch(state, q, r); })
      .submits_work = true;
}

}  // namespace tessera::server
