#include "store/store_checks.h"

#include <cmath>
#include <cstdio>

namespace tessera::store::checks {

bool ValidProgress(double progress) { return std::isfinite(progress) && progress >= 0.0 && progress <= 1.0; }

std::string ProgressOutOfRange(const std::string& operation, double progress) {
  char text[64];
  std::snprintf(text, sizeof text, "%g", progress);
  return operation + ": progress " + text + " is outside [0, 1]";
}

Status CheckNewBatch(const Batch& batch, const std::vector<BatchImage>& images, const std::vector<Job>& jobs) {
  if (batch.id.empty()) return InvalidError("create batch: empty id");
  const std::string operation = "create batch " + batch.id;
  if (images.size() != jobs.size()) {
    return InvalidError(operation + ": " + std::to_string(images.size()) + " images but " +
                        std::to_string(jobs.size()) + " jobs");
  }
  if (batch.total_images != static_cast<int64_t>(images.size())) {
    return InvalidError(operation + ": total_images is " + std::to_string(batch.total_images) + " but " +
                        std::to_string(images.size()) + " images were given");
  }
  for (size_t i = 0; i < images.size(); ++i) {
    const BatchImage& image = images[i];
    if (image.id.empty()) return InvalidError(operation + ": image " + std::to_string(i) + " has an empty id");
    if (image.batch_id != batch.id) {
      return InvalidError(operation + ": image " + image.id + " names batch '" + image.batch_id + "'");
    }
    if (image.job_id != jobs[i].id) {
      return InvalidError(operation + ": image " + image.id + " names job '" + image.job_id + "' but its job is '" +
                          jobs[i].id + "'");
    }
    if (jobs[i].batch_id != batch.id) {
      return InvalidError(operation + ": job " + jobs[i].id + " names batch '" + jobs[i].batch_id + "'");
    }
  }
  return Status::Ok();
}

}  // namespace tessera::store::checks
