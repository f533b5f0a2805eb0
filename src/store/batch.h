// Image batches as the store keeps them (seed 004): a batch, its images, and the
// upscale job behind each image's current attempt.
//
// Statuses and counters are never stored: they are derived from the image rows
// and their jobs (src/jobs/batch_state.h), so they cannot drift from the truth.
#pragma once

#include <cstdint>
#include <string>

#include "store/job.h"

namespace tessera::store {

struct Batch {
  std::string id;       // UUID v4
  std::string game_id;  // the game folder the images belong to
  int64_t total_images = 0;
  int max_retries = 3;  // automatic and manual retries of one image, after its first attempt
  std::string params_json = "{}";  // model, engine, quality, format: shared by every image
  std::string webhook_url;         // called once when the batch settles; empty: none
  int64_t created_ms = 0;
  int64_t notified_ms = 0;  // when the completion webhook was queued; 0: not yet
  int64_t seq = 0;          // creation order, assigned by the store (read by ListBatches only)
};

struct BatchImage {
  std::string id;  // UUID v4
  std::string batch_id;
  int64_t position = 0;        // order in the upload, from 0
  std::string original_name;   // the client's file name (for display only)
  std::string input_path;      // the stored original
  std::string job_id;          // the job of the current attempt
  int attempts = 1;            // jobs made for this image so far
  int64_t retry_at_ms = 0;     // an automatic retry is due then; 0: none scheduled
};

// An image with what its current job says (one join, read in one statement).
struct BatchImageRow {
  BatchImage image;
  JobStatus job_status = JobStatus::kQueued;
  std::string job_error;
  std::string result_filename;
  int64_t job_started_ms = 0;
  int64_t job_finished_ms = 0;
};

}  // namespace tessera::store
