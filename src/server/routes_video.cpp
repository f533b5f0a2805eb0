// POST /upscale/video: a whole video upscaled by the server (issue 19, docs/video.md
// "Server video jobs"). The raw video is the body; the options are in the query
// string, so a bad one is refused before the body is read:
//   model, scale (as POST /upscale), codec, crf, preset, pix_fmt (as `tessera
//   upscale`), container (mp4 | mkv | mov | webm; default mp4), filename, webhook.
// Answers 202 with the video job; its segments run on any free lane.
//
// The body streams to a temporary file (memory: a fixed buffer), then moves to
// <uploads>/video-<job id>/source, where every node of a cluster can read it.
// Content decides what it is (video::LooksLikeVideo): anything else is 415.
#include <filesystem>
#include <nlohmann/json.hpp>

#include "jobs/job_submission.h"
#include "jobs/upload_file.h"
#include "server/server_state.h"
#include "util/log.h"
#include "util/uuid.h"
#include "video/container_rules.h"
#include "video/video_probe.h"

namespace tessera::server {
namespace {

using nlohmann::json;

// What the query string asks, checked before the body is read.
struct VideoChoice {
  std::string params_json;
  std::string model;
  std::string container;  // "mp4"...
  std::string filename;   // empty: named after the job
  std::string webhook;
};

Result<VideoChoice> ReadVideoChoice(const JobServer::State& state, const HttpRequest& request) {
  auto upscale = ResolveUpscaleChoice(state, request.Param("model"), request.Param("scale"), "");
  if (!upscale.ok()) return upscale.status();
  json params = json::parse(upscale->params_json);
  params.erase("format");  // the video's container, not an image format
  VideoChoice choice;
  choice.container = request.Param("container").empty() ? "mp4" : request.Param("container");
  if (choice.container != "mp4" && choice.container != "mkv" && choice.container != "mov" && choice.container != "webm") {
    return InvalidError("container must be mp4, mkv, mov or webm");
  }
  params["codec"] = request.Param("codec").empty() ? std::string("libx264") : request.Param("codec");
  if (std::string crf = request.Param("crf"); !crf.empty()) {
    char* end = nullptr;
    long value = std::strtol(crf.c_str(), &end, 10);
    if (end == crf.c_str() || *end != '\0' || value < 0 || value > 63) return InvalidError("crf must be 0 to 63");
    params["crf"] = value;
  }
  params["preset"] = request.Param("preset");
  params["pix_fmt"] = request.Param("pix_fmt");
  auto container = video::ContainerForPath("x." + choice.container);
  if (!container.ok()) return container.status();
  if (Status s = video::CheckVideoCodec(*container, params["codec"].get<std::string>()); !s.ok()) return s;
  choice.filename = request.Param("filename");
  if (!choice.filename.empty()) {
    if (std::filesystem::path(choice.filename).extension() != "." + choice.container) {
      choice.filename += "." + choice.container;
    }
    if (!jobs::IsSafeResultName(choice.filename)) {
      return InvalidError("filename may hold letters, digits, '.', '_' and '-' only");
    }
  }
  choice.webhook = request.Param("webhook");
  if (!choice.webhook.empty() && choice.webhook.rfind("http://", 0) != 0 && choice.webhook.rfind("https://", 0) != 0) {
    return InvalidError("webhook must be an http:// or https:// URL");
  }
  choice.model = upscale->model;
  choice.params_json = params.dump();
  return choice;
}

class VideoUpload : public BodyConsumer {
 public:
  VideoUpload(JobServer::State& state, std::unique_ptr<jobs::UploadFile> file, VideoChoice choice)
      : state_(state), file_(std::move(file)), choice_(std::move(choice)) {}

  Status Consume(const char* data, size_t size) override { return file_->Write(data, size); }
  void Finish(const HttpRequest& request, HttpResponse& response) override;

 private:
  JobServer::State& state_;
  std::unique_ptr<jobs::UploadFile> file_;
  VideoChoice choice_;
};

void VideoUpload::Finish(const HttpRequest& request, HttpResponse& response) {
  if (file_->bytes() == 0) return ReplyError(response, 400, "the body must be the video");
  jobs::VideoRequest wanted;
  wanted.job_id = NewUuidV4();
  // Absolute: the segment jobs' children and the joiner open these paths.
  const std::string folder = std::filesystem::absolute(state_.config.UploadsDir()).string() + "/video-" + wanted.job_id;
  std::error_code ec;
  std::filesystem::create_directories(folder, ec);
  if (ec) return ReplyStatus(response, IoError("cannot make " + folder + ": " + ec.message()));
  // Removed again unless the job was committed.
  struct FolderGuard {
    std::string path;
    bool keep = false;
    ~FolderGuard() {
      std::error_code ignored;
      if (!keep) std::filesystem::remove_all(path, ignored);
    }
  } guard{folder};
  wanted.source_path = folder + "/source";
  if (Status stored = file_->Commit(wanted.source_path); !stored.ok()) return ReplyStatus(response, stored);
  if (!video::LooksLikeVideo(wanted.source_path)) {
    return ReplyError(response, 415, "the body is not a video libavformat reads (send images to POST /upscale)");
  }
  wanted.filename = choice_.filename.empty()
                        ? "upscale_" + choice_.model + "_" + wanted.job_id.substr(0, 8) + "." + choice_.container
                        : choice_.filename;
  if (std::filesystem::exists(state_.config.ResultsDir() + "/" + wanted.filename, ec)) {
    return ReplyError(response, 409, "a result named " + wanted.filename + " exists already");
  }
  wanted.params_json = choice_.params_json;
  wanted.webhook_url = choice_.webhook;
  wanted.client = request.remote_addr;
  auto job = state_.videos->Submit(wanted);
  if (!job.ok()) return ReplyStatus(response, job.status());
  guard.keep = true;
  LogInfo("job_submitted").Field("job_id", job->id).Field("kind", "video").Field("bytes", file_->bytes())
      .Field("client", request.remote_addr);
  auto view = state_.scheduler->Describe(job->id);
  if (!view.ok()) return ReplyStatus(response, view.status());
  response.SetHeader("Location", "/status/" + job->id);
  ReplyJson(response, 202, JobViewJson(state_, *view));
}

Result<std::unique_ptr<BodyConsumer>> StartVideo(JobServer::State& state, const HttpRequest& head) {
  if (head.Header("Content-Type").rfind("multipart/", 0) == 0) {
    return InvalidError("POST /upscale/video takes the raw video as its body, the options in the query string");
  }
  auto choice = ReadVideoChoice(state, head);
  if (!choice.ok()) return choice.status();
  auto file = jobs::UploadFile::Create(state.config.UploadsDir(), state.config.node_id);
  if (!file.ok()) return file.status();
  return std::unique_ptr<BodyConsumer>(new VideoUpload(state, std::move(*file), std::move(*choice)));
}

}  // namespace

void RegisterVideoRoutes(JobServer::State& state) {
  state.router.AddStreamed(
      "POST", "/upscale/video", [&state](const HttpRequest& head) { return StartVideo(state, head); },
      static_cast<uint64_t>(state.config.max_body_mb * 1024 * 1024))
      .submits_work = true;
}

}  // namespace tessera::server
