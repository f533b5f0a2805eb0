// Making the jobs clients ask for: their ids, parameters and result names,
// checked against the names already taken, then submitted. The server's routes
// parse a request, call this and answer; nothing here knows HTTP.
#pragma once

#include <functional>
#include <string>

#include "jobs/scheduler.h"
#include "jobs/video_postprocess.h"
#include "store/job_store.h"
#include "util/status.h"

namespace tessera::jobs {

// A result file name: letters, digits, '.', '_', '-'; no leading dot; 1-255 bytes.
bool IsSafeResultName(const std::string& name);

// result_gpu{gpu}_{YYYY-mm-dd_HH-MM-SS}_{short_id}.mp4 (seed 001 section 10);
// CPU lanes say cpu{n}.
std::string DefaultVideoName(const store::Job& job);

struct GenerateRequest {
  std::string prompt;
  VideoSize size;
  std::string resize_mode;  // "pad" | "scale"
  std::string filename;     // empty: DefaultVideoName; ".mp4" is added when missing
  std::string webhook_url;
  std::string client;
};

// kInvalid for a bad file name; kLimit when a live or finished job or a file in
// `results_dir` holds the name; the scheduler's errors otherwise.
Result<JobView> SubmitGenerate(Scheduler& scheduler, store::JobStore& store, const std::string& results_dir,
                               const GenerateRequest& request);

struct UpscaleRequest {
  std::string params_json;  // the worker's parameters (engine, quality, model, format)
  std::string model;
  std::string extension;  // ".png"
  std::string filename;   // empty: upscale_{model}_{id8}{extension}; the extension is added when missing
  std::string webhook_url;
  std::string client;
  std::string uploads_dir;
  // Puts the received image at `input_path` (before the job is committed).
  std::function<Status(const std::string& input_path)> store_input;
  // Sees the job's id before it is submitted (to wait for it without a race).
  std::function<void(const std::string& id)> before_submit;
};

// kInvalid for a bad file name, kLimit when a file holds it already; the
// input's and the scheduler's errors otherwise (the stored input is removed).
Result<JobView> SubmitUpscale(Scheduler& scheduler, const std::string& results_dir, const UpscaleRequest& request);

// A new job doing again what a failed or canceled one asked (same kind, prompt,
// parameters, input and webhook; a new id and result name). The stored input of
// an upscale is hard-linked, so deleting either job keeps the other's. kLimit
// when the job is not finished with error or canceled, or belongs to an image
// batch (whose retries count against the batch: POST /images/batches/{id}/retry);
// kNotFound when its input is gone.
Result<JobView> SubmitRetry(Scheduler& scheduler, store::JobStore& store, const std::string& results_dir,
                            const std::string& uploads_dir, const store::Job& failed, const std::string& client);

}  // namespace tessera::jobs
