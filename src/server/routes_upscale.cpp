// POST /upscale: one image in, one upscaled image out, through a lane's worker.
//
//   multipart/form-data: a file field "image" (or the first file), optional text
//     fields model, scale, format, filename, webhook;
//   or the raw image as the body, the options in the query string.
//   ?wait=true answers with the image itself once done (or 202 if it takes longer
//   than `timeout` seconds); otherwise 202 with the job id at once.
//
// The image streams to a temporary file as it arrives (memory: a fixed buffer,
// whatever its size); its first bytes must be an image signature, else 415 at
// once. A damaged image with a valid signature still fails later, in its job.
#include <nlohmann/json.hpp>

#include "imaging/image_codec.h"
#include "imaging/image_magic.h"
#include "jobs/job_state.h"
#include "jobs/job_submission.h"
#include "server/multipart_parser.h"
#include "server/query_params.h"
#include "server/server_state.h"
#include "server/upload_file.h"
#include "util/log.h"
#include "worker/engine_resolver.h"

namespace tessera::server {
namespace {

using nlohmann::json;

constexpr size_t kMaxFieldBytes = 4096;
constexpr double kMaxWaitSeconds = 86400;

struct WaitChoice {
  bool wait = false;
  double timeout_s = 0;
};

Result<WaitChoice> ReadWaitChoice(const JobServer::State& state, const HttpRequest& request) {
  WaitChoice choice;
  auto wait = BoolParam(request, "wait", false);
  if (!wait.ok()) return wait.status();
  auto timeout = SecondsParam(request, "timeout", state.config.upscale_timeout_s * state.config.max_attempts + 60, 0,
                              kMaxWaitSeconds);
  if (!timeout.ok()) return timeout.status();
  choice.wait = *wait;
  choice.timeout_s = *timeout;
  return choice;
}

// Receives the body: the image into its upload file, the form's text fields in
// memory (4096 bytes each at most).
class UpscaleUpload : public BodyConsumer {
 public:
  UpscaleUpload(JobServer::State& state, std::unique_ptr<UploadFile> file, std::optional<std::string> boundary,
                WaitChoice wait)
      : state_(state), file_(std::move(file)), wait_(wait) {
    if (boundary) {
      multipart_ = std::make_unique<MultipartParser>(
          *boundary, MultipartCallbacks{[this](const MultipartPart& part) { return BeginPart(part); },
                                        [this](const char* data, size_t size) { return PartData(data, size); },
                                        nullptr});
    }
  }

  Status Consume(const char* data, size_t size) override {
    if (multipart_) return multipart_->Feed(data, size);
    return TakeImage(data, size);
  }

  void Finish(const HttpRequest& request, HttpResponse& response) override;

 private:
  Status BeginPart(const MultipartPart& part) {
    part_is_image_ = false;
    field_ = part.name;
    bool image = part.name == "image" || !part.filename.empty();
    if (!image) {
      fields_[field_].clear();
      return Status::Ok();
    }
    if (!image_field_.empty() && (image_field_ == "image" || part.name != "image")) return Status::Ok();  // keep the first
    if (!image_field_.empty()) {
      if (Status restarted = file_->Restart(); !restarted.ok()) return restarted;
      head_.clear();
    }
    image_field_ = part.name;
    part_is_image_ = true;
    return Status::Ok();
  }

  Status PartData(const char* data, size_t size) {
    if (part_is_image_) return TakeImage(data, size);
    if (image_field_ == field_ && !image_field_.empty()) return Status::Ok();  // a second file: ignored
    std::string& value = fields_[field_];
    if (value.size() + size > kMaxFieldBytes) {
      return InvalidError("form field " + field_ + " is longer than " + std::to_string(kMaxFieldBytes) + " bytes");
    }
    value.append(data, size);
    return Status::Ok();
  }

  Status TakeImage(const char* data, size_t size) {
    if (head_.size() < imaging::kImageMagicBytes) {
      head_.append(data, std::min(size, imaging::kImageMagicBytes - head_.size()));
      if (head_.size() == imaging::kImageMagicBytes) {
        if (Status image = CheckSignature(); !image.ok()) return image;
      }
    }
    return file_->Write(data, size);
  }

  Status CheckSignature() const {
    auto bytes = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(head_.data()), head_.size());
    if (imaging::SniffImageFormat(bytes)) return Status::Ok();
    return BadImageError("the upload is not an image: its first bytes match no image format (" +
                         std::string(imaging::KnownImageFormats()) + ")");
  }

  // A text field from the form, else from the query string.
  std::string Field(const HttpRequest& request, const std::string& name) const {
    auto it = fields_.find(name);
    return it != fields_.end() ? it->second : request.Param(name);
  }

  void Submit(const HttpRequest& request, HttpResponse& response, const UpscaleChoice& choice);

  JobServer::State& state_;
  std::unique_ptr<UploadFile> file_;
  WaitChoice wait_;
  std::unique_ptr<MultipartParser> multipart_;
  std::map<std::string, std::string> fields_;
  std::string field_;
  std::string image_field_;  // the part that holds the image ("" before one)
  bool part_is_image_ = false;
  std::string head_;  // the image's first bytes, for its signature
};

void UpscaleUpload::Finish(const HttpRequest& request, HttpResponse& response) {
  if (multipart_) {
    if (Status ended = multipart_->Finish(); !ended.ok()) return ReplyStatus(response, ended);
  }
  if (file_->bytes() == 0) {
    return ReplyError(response, 400, "no image: send it as the body, or as a multipart file field named \"image\"");
  }
  if (Status image = CheckSignature(); !image.ok()) return ReplyStatus(response, image);
  auto choice = ResolveUpscaleChoice(state_, Field(request, "model"), Field(request, "scale"), Field(request, "format"));
  if (!choice.ok()) return ReplyStatus(response, choice.status());
  Submit(request, response, *choice);
}

// What POST /upscale?wait=true answers once its job finished or the wait ended.
void AnswerAfterWait(JobServer::State& state, const std::string& id, const std::string& content_type,
                     HttpResponse& response) {
  auto done = state.scheduler->Describe(id);
  if (!done.ok()) return ReplyStatus(response, done.status());
  if (!store::IsFinished(done->job.status)) {
    response.SetHeader("Location", "/status/" + id);
    return ReplyJson(response, 202, JobViewJson(state, *done));
  }
  if (done->job.status != store::JobStatus::kSuccess) {
    return ReplyJson(response, done->job.status == store::JobStatus::kCanceled ? 409 : 422, JobViewJson(state, *done));
  }
  ServeFileAt(state.config.ResultsDir(), done->job.filename, HttpRequest(), response);
  if (response.status != 200) return;
  response.content_type = content_type;
  response.SetHeader("X-Tessera-Job-Id", id);
  response.SetHeader("Content-Disposition", "inline; filename=\"" + done->job.filename + "\"");
}

void UpscaleUpload::Submit(const HttpRequest& request, HttpResponse& response, const UpscaleChoice& choice) {
  std::string webhook = Field(request, "webhook");
  if (!webhook.empty() && webhook.rfind("http://", 0) != 0 && webhook.rfind("https://", 0) != 0) {
    return ReplyError(response, 400, "webhook must be an http:// or https:// URL");
  }
  jobs::UpscaleRequest wanted;
  wanted.params_json = choice.params_json;
  wanted.model = choice.model;
  wanted.extension = choice.extension;
  wanted.filename = Field(request, "filename");
  wanted.webhook_url = webhook;
  wanted.client = request.remote_addr;
  wanted.uploads_dir = state_.config.UploadsDir();
  uint64_t bytes = file_->bytes();
  wanted.store_input = [this](const std::string& input_path) { return file_->Commit(input_path); };
  std::string watched;
  if (wait_.wait) {
    wanted.before_submit = [this, &watched](const std::string& id) {
      watched = id;
      state_.waiters.Watch(id);
    };
  }
  auto view = jobs::SubmitUpscale(*state_.scheduler, state_.config.ResultsDir(), wanted);
  if (!view.ok()) {
    if (!watched.empty()) state_.waiters.Unwatch(watched);
    return ReplyStatus(response, view.status());
  }
  const std::string& id = view->job.id;
  LogInfo("job_submitted").Field("job_id", id).Field("kind", "upscale").Field("lane", view->job.lane)
      .Field("bytes", bytes).Field("client", request.remote_addr);
  if (!wait_.wait) {
    response.SetHeader("Location", "/status/" + id);
    return ReplyJson(response, 202, JobViewJson(state_, *view));
  }
  // The connection waits without a thread; the answer is made once the job
  // finished or the timeout passed.
  JobServer::State& state = state_;
  auto timeout = std::chrono::milliseconds(static_cast<int64_t>(wait_.timeout_s * 1000));
  response.wait = [&state, id, timeout](std::function<void()> resume) {
    state.waiters.WhenFinished(id, timeout, [resume](bool) { resume(); });
  };
  response.then = [&state, id, content_type = choice.content_type](HttpResponse& answer) {
    AnswerAfterWait(state, id, content_type, answer);
  };
}

Result<std::unique_ptr<BodyConsumer>> StartUpscale(JobServer::State& state, const HttpRequest& head) {
  auto wait = ReadWaitChoice(state, head);
  if (!wait.ok()) return wait.status();
  std::string content_type = head.Header("Content-Type");
  std::optional<std::string> boundary = MultipartBoundary(content_type);
  if (!boundary && content_type.rfind("multipart/", 0) == 0) {
    return InvalidError("a multipart body needs Content-Type: multipart/form-data; boundary=...");
  }
  if (!boundary) {
    // Raw body: the options are all in the query, so a bad one is refused before
    // the body is read.
    auto choice = ResolveUpscaleChoice(state, head.Param("model"), head.Param("scale"), head.Param("format"));
    if (!choice.ok()) return choice.status();
  }
  auto file = UploadFile::Create(state.config.UploadsDir(), state.config.node_id);
  if (!file.ok()) return file.status();
  return std::unique_ptr<BodyConsumer>(new UpscaleUpload(state, std::move(*file), boundary, *wait));
}

}  // namespace

Result<UpscaleChoice> ResolveUpscaleChoice(const JobServer::State& state, const std::string& model_name,
                                           const std::string& scale, const std::string& format_name) {
  UpscaleChoice choice;
  auto format = imaging::ParseOutputFormat(format_name.empty() ? "png" : format_name);
  if (!format) return InvalidError("format must be png, jpg or webp");
  choice.extension = std::string(imaging::OutputFormatExtension(*format));
  choice.content_type = *format == imaging::OutputFormat::kPng    ? "image/png"
                        : *format == imaging::OutputFormat::kJpeg ? "image/jpeg"
                                                                  : "image/webp";
  std::string model = model_name.empty() ? state.config.default_model : model_name;
  json params;
  if (model == "lanczos") {
    std::string factor = scale.empty() ? "2" : scale;
    if (factor != "2" && factor != "3" && factor != "4") return InvalidError("scale must be 2, 3 or 4");
    params = json{{"engine", "lanczos"}, {"quality", factor}, {"model", model}};
  } else {
    std::string dir = state.config.model_dir.empty() ? engine::DefaultModelDir() : state.config.model_dir;
    auto manifest = engine::ReadManifest(dir);
    if (!manifest.ok()) return Status(StatusCode::kDeviceUnavailable, manifest.status().message());
    std::string names;
    for (const auto& entry : *manifest) {
      if (entry.name == model) {
        if (!scale.empty() && scale != std::to_string(entry.scale)) {
          return InvalidError("model " + model + " upscales x" + std::to_string(entry.scale) + ", not x" + scale);
        }
        params = json{{"engine", protocol::EngineName(worker::EngineForFamily(entry.family))},
                      {"quality", model},
                      {"model", model}};
        break;
      }
      names += (names.empty() ? "" : ", ") + entry.name;
    }
    if (params.is_null()) return InvalidError("unknown model " + model + "; installed: lanczos, " + names);
  }
  params["format"] = std::string(imaging::OutputFormatName(*format));
  choice.model = model;
  choice.params_json = params.dump();
  return choice;
}

void RegisterUpscaleRoutes(JobServer::State& state) {
  state.router.AddStreamed(
      "POST", "/upscale", [&state](const HttpRequest& head) { return StartUpscale(state, head); },
      static_cast<uint64_t>(state.config.max_body_mb * 1024 * 1024));
}

}  // namespace tessera::server
