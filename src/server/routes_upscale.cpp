// POST /upscale: one image in, one upscaled image out, through a lane's worker.
//
//   multipart/form-data: a file field "image" (or the first file), optional text
//     fields model, scale, format, filename, webhook;
//   or the raw image as the body, the options in the query string.
//   ?wait=true answers with the image itself once done (or 202 if it takes longer
//   than `timeout` seconds); otherwise 202 with the job id at once.
#include <nlohmann/json.hpp>

#include "imaging/image_codec.h"
#include "jobs/job_state.h"
#include "server/server_state.h"
#include "util/file_io.h"
#include "util/log.h"
#include "util/uuid.h"
#include "worker/engine_resolver.h"

namespace tessera::server {
namespace {

using nlohmann::json;

struct UpscaleForm {
  std::string image;
  std::string model, scale, format, filename, webhook;
};

std::string Field(const httplib::Request& request, const std::string& name) {
  if (request.is_multipart_form_data()) {
    if (request.has_file(name)) return request.get_file_value(name).content;
  }
  return request.get_param_value(name);
}

Result<UpscaleForm> ReadForm(const httplib::Request& request) {
  UpscaleForm form;
  if (request.is_multipart_form_data()) {
    if (request.has_file("image")) {
      form.image = request.get_file_value("image").content;
    } else {
      for (const auto& [name, file] : request.files) {
        if (!file.filename.empty()) {
          form.image = file.content;
          break;
        }
      }
    }
  } else {
    form.image = request.body;
  }
  if (form.image.empty()) {
    return InvalidError("no image: send it as the body, or as a multipart file field named \"image\"");
  }
  form.model = Field(request, "model");
  form.scale = Field(request, "scale");
  form.format = Field(request, "format");
  form.filename = Field(request, "filename");
  form.webhook = Field(request, "webhook");
  return form;
}

void Upscale(JobServer::State& state, const httplib::Request& request, httplib::Response& response) {
  auto form = ReadForm(request);
  if (!form.ok()) return ReplyError(response, 400, form.status().message());
  auto choice = ResolveUpscaleChoice(state, form->model, form->scale, form->format);
  if (!choice.ok()) {
    return ReplyError(response, choice.status().code() == StatusCode::kInvalid ? 400 : 503, choice.status().message());
  }
  form->model = choice->model;
  std::string extension = choice->extension;

  store::Job job;
  job.id = NewUuidV4();
  job.kind = store::JobKind::kUpscale;
  job.params_json = choice->params_json;
  job.client = request.remote_addr;
  if (!form->webhook.empty()) {
    if (form->webhook.rfind("http://", 0) != 0 && form->webhook.rfind("https://", 0) != 0) {
      return ReplyError(response, 400, "webhook must be an http:// or https:// URL");
    }
    job.webhook_url = form->webhook;
  }
  if (!form->filename.empty()) {
    job.filename = form->filename;
    if (job.filename.size() < extension.size() ||
        job.filename.compare(job.filename.size() - extension.size(), extension.size(), extension) != 0) {
      job.filename += extension;
    }
    if (!IsSafeFileName(job.filename)) {
      return ReplyError(response, 400, "filename may use letters, digits, '.', '_' and '-' only, and must not start with '.'");
    }
    if (::access((state.config.ResultsDir() + "/" + job.filename).c_str(), F_OK) == 0) {
      return ReplyError(response, 409, "a file named " + job.filename + " already exists");
    }
  } else {
    job.filename = "upscale_" + form->model + "_" + job.id.substr(0, 8) + extension;
  }
  job.input_path = state.config.UploadsDir() + "/" + job.id + ".input";
  auto bytes = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(form->image.data()), form->image.size());
  if (Status stored = WriteFileAtomically(job.input_path, bytes); !stored.ok()) {
    return ReplyError(response, 500, "cannot store the upload: " + stored.message());
  }

  bool wait = request.get_param_value("wait") == "true";
  if (wait) state.waiters.Watch(job.id);
  auto view = state.scheduler->Submit(job);
  if (!view.ok()) {
    state.waiters.Unwatch(job.id);
    ::unlink(job.input_path.c_str());
    return ReplyError(response, view.status().code() == StatusCode::kDeviceUnavailable ? 503 : 500,
                      view.status().message());
  }
  LogInfo("job_submitted").Field("job_id", job.id).Field("kind", "upscale").Field("lane", view->job.lane)
      .Field("bytes", form->image.size()).Field("client", request.remote_addr);
  if (!wait) {
    response.set_header("Location", "/status/" + job.id);
    return ReplyJson(response, 202, JobViewJson(state, *view));
  }

  double timeout_s = state.config.upscale_timeout_s * state.config.max_attempts + 60;
  if (std::string t = request.get_param_value("timeout"); !t.empty()) timeout_s = std::atof(t.c_str());
  bool finished = state.waiters.WaitFinished(job.id, std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
  state.waiters.Unwatch(job.id);
  auto done = state.scheduler->Describe(job.id);
  if (!done.ok()) return ReplyError(response, 500, done.status().message());
  if (!finished || !store::IsFinished(done->job.status)) {
    response.set_header("Location", "/status/" + job.id);
    return ReplyJson(response, 202, JobViewJson(state, *done));
  }
  if (done->job.status != store::JobStatus::kSuccess) {
    return ReplyJson(response, done->job.status == store::JobStatus::kCanceled ? 409 : 422, JobViewJson(state, *done));
  }
  auto image = ReadFileBytes(state.config.ResultsDir() + "/" + done->job.filename);
  if (!image.ok()) return ReplyError(response, 500, image.status().message());
  response.set_header("X-Tessera-Job-Id", job.id);
  response.set_header("Content-Disposition", "inline; filename=\"" + done->job.filename + "\"");
  response.status = 200;
  response.set_content(std::string(image->begin(), image->end()), choice->content_type);
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
  state.http.Post("/upscale", [&state](const httplib::Request& q, httplib::Response& r) { Upscale(state, q, r); });
}

}  // namespace tessera::server
