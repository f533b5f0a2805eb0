// POST /upscale: one image in, one upscaled image out, through a lane's worker.
//
//   multipart/form-data: a file field "image" (or the first file), optional text
//     fields model, scale, format, filename, webhook;
//   or the raw image as the body, the options in the query string.
//   ?wait=true answers with the image itself once done (or 202 if it takes longer
//   than `timeout` seconds); otherwise 202 with the job id at once.
//
// The image streams to a temporary file as it arrives (jobs/upscale_upload:
// memory is a fixed buffer, whatever its size); its first bytes must be an image
// signature, else 415 at once. A damaged image with a valid signature still
// fails later, in its job.
#include <nlohmann/json.hpp>

#include "imaging/image_codec.h"
#include "jobs/job_state.h"
#include "jobs/job_submission.h"
#include "jobs/upscale_upload.h"
#include "server/multipart_parser.h"
#include "server/query_params.h"
#include "server/server_state.h"
#include "util/log.h"
#include "worker/engine_resolver.h"

namespace tessera::server {
namespace {

using nlohmann::json;

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

// Receives the body (raw, or a multipart form) into the job's upload
// (jobs/upscale_upload), then submits the job and answers.
class UpscaleUpload : public BodyConsumer {
 public:
  UpscaleUpload(JobServer::State& state, jobs::UpscaleUploadWriter writer, std::optional<std::string> boundary,
                WaitChoice wait)
      : state_(state), writer_(std::move(writer)), wait_(wait) {
    if (boundary) {
      multipart_ = std::make_unique<MultipartParser>(
          *boundary, MultipartCallbacks{[this](const MultipartPart& part) {
                                          return writer_.BeginPart(part.name, part.filename);
                                        },
                                        [this](const char* data, size_t size) { return writer_.PartData(data, size); },
                                        nullptr});
    }
  }

  Status Consume(const char* data, size_t size) override {
    if (multipart_) return multipart_->Feed(data, size);
    return writer_.ImageData(data, size);
  }

  void Finish(const HttpRequest& request, HttpResponse& response) override;

 private:
  // A text field from the form, else from the query string.
  std::string Field(const HttpRequest& request, const std::string& name) const {
    return writer_.Field(name).value_or(request.Param(name));
  }

  void Submit(const HttpRequest& request, HttpResponse& response, const UpscaleChoice& choice);

  JobServer::State& state_;
  jobs::UpscaleUploadWriter writer_;
  WaitChoice wait_;
  std::unique_ptr<MultipartParser> multipart_;
};

void UpscaleUpload::Finish(const HttpRequest& request, HttpResponse& response) {
  if (multipart_) {
    if (Status ended = multipart_->Finish(); !ended.ok()) return ReplyStatus(response, ended);
  }
  if (Status image = writer_.Finish(); !image.ok()) return ReplyStatus(response, image);
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
  uint64_t bytes = writer_.bytes();
  wanted.store_input = [this](const std::string& input_path) { return writer_.StoreAt(input_path); };
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
  auto writer = jobs::UpscaleUploadWriter::Start(state.config.UploadsDir(), state.config.node_id);
  if (!writer.ok()) return writer.status();
  return std::unique_ptr<BodyConsumer>(new UpscaleUpload(state, std::move(*writer), boundary, *wait));
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
      static_cast<uint64_t>(state.config.max_body_mb * 1024 * 1024))
      .submits_work = true;
}

}  // namespace tessera::server
