#include "jobs/batch_state.h"

#include <cstdio>

namespace tessera::jobs {

using store::JobStatus;

std::string_view ImageStatusName(ImageStatus status) {
  switch (status) {
    case ImageStatus::kPending: return "PENDING";
    case ImageStatus::kProcessing: return "PROCESSING";
    case ImageStatus::kCompleted: return "COMPLETED";
    case ImageStatus::kFailed: return "FAILED";
    case ImageStatus::kRetrying: return "RETRYING";
  }
  return "PENDING";
}

std::string_view BatchStatusName(BatchStatus status) {
  switch (status) {
    case BatchStatus::kPending: return "PENDING";
    case BatchStatus::kProcessing: return "PROCESSING";
    case BatchStatus::kCompleted: return "COMPLETED";
    case BatchStatus::kFailed: return "FAILED";
    case BatchStatus::kRetrying: return "RETRYING";
    case BatchStatus::kPartiallyCompleted: return "PARTIALLY_COMPLETED";
  }
  return "PENDING";
}

ImageStatus ImageStatusOf(const store::BatchImageRow& row) {
  switch (row.job_status) {
    case JobStatus::kQueued: return ImageStatus::kPending;
    case JobStatus::kRunning: return ImageStatus::kProcessing;
    case JobStatus::kSuccess: return ImageStatus::kCompleted;
    case JobStatus::kError:
    case JobStatus::kCanceled:
      return row.image.retry_at_ms > 0 ? ImageStatus::kRetrying : ImageStatus::kFailed;
  }
  return ImageStatus::kPending;
}

bool ImageMayRetry(const store::BatchImageRow& row, int max_retries) {
  bool failed = row.job_status == JobStatus::kError || row.job_status == JobStatus::kCanceled;
  return failed && row.image.attempts <= max_retries;
}

BatchSummary SummarizeBatch(const std::vector<store::BatchImageRow>& rows, int max_retries) {
  BatchSummary summary;
  summary.total = static_cast<int64_t>(rows.size());
  bool any_started = false;
  bool retry_in_flight = false;
  for (const auto& row : rows) {
    ImageStatus status = ImageStatusOf(row);
    if (row.image.attempts > 1 || status != ImageStatus::kPending) any_started = true;
    switch (status) {
      case ImageStatus::kPending: summary.pending += 1; break;
      case ImageStatus::kProcessing: summary.processing += 1; break;
      case ImageStatus::kCompleted: summary.completed += 1; break;
      case ImageStatus::kFailed: summary.failed += 1; break;
      case ImageStatus::kRetrying: summary.retrying += 1; break;
    }
    if (row.image.attempts > 1 && (status == ImageStatus::kPending || status == ImageStatus::kProcessing)) {
      retry_in_flight = true;
    }
    if (status == ImageStatus::kFailed && ImageMayRetry(row, max_retries)) summary.retryable += 1;
  }
  int64_t active = summary.pending + summary.processing + summary.retrying;
  summary.settled = active == 0;
  if (summary.total > 0 && summary.completed == summary.total) {
    summary.status = BatchStatus::kCompleted;
  } else if (!any_started) {
    summary.status = BatchStatus::kPending;
  } else if (summary.retrying > 0 || retry_in_flight) {
    summary.status = BatchStatus::kRetrying;
  } else if (active > 0) {
    summary.status = BatchStatus::kProcessing;
  } else if (summary.failed == summary.total) {
    summary.status = BatchStatus::kFailed;
  } else {
    summary.status = BatchStatus::kPartiallyCompleted;
  }
  return summary;
}

std::string BatchSummary::ProcessedText() const {
  return std::to_string(completed) + "/" + std::to_string(total) + " images processed";
}

std::string BatchSummary::FailedText() const {
  return std::to_string(failed) + "/" + std::to_string(total) + " images failed";
}

double BatchSummary::percentage() const {
  if (total == 0) return 0.0;
  return static_cast<double>(completed) * 100.0 / static_cast<double>(total);
}

}  // namespace tessera::jobs
