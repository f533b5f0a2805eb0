// The one place that decides image and batch statuses (seed 004), from the image
// rows and their jobs. Nothing is stored but the rows: the counters and statuses
// are always derived, so they cannot drift.
//
// Image (its current attempt's job):
//   job queued            -> PENDING
//   job running           -> PROCESSING
//   job success           -> COMPLETED
//   job error or canceled -> RETRYING while an automatic retry is scheduled, else FAILED
//
// Batch:
//   every image COMPLETED                                  -> COMPLETED
//   nothing started yet (all first attempts, all PENDING)  -> PENDING
//   a retry scheduled, or a retried image not yet settled  -> RETRYING
//   images PENDING or PROCESSING                           -> PROCESSING
//   settled, every image FAILED                            -> FAILED
//   settled, some COMPLETED and some FAILED                -> PARTIALLY_COMPLETED
// A batch is settled when no image is PENDING, PROCESSING or RETRYING.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "store/batch.h"

namespace tessera::jobs {

enum class ImageStatus { kPending, kProcessing, kCompleted, kFailed, kRetrying };
enum class BatchStatus { kPending, kProcessing, kCompleted, kFailed, kRetrying, kPartiallyCompleted };

std::string_view ImageStatusName(ImageStatus status);  // "PENDING", ...
std::string_view BatchStatusName(BatchStatus status);  // "PENDING", ..., "PARTIALLY_COMPLETED"

ImageStatus ImageStatusOf(const store::BatchImageRow& row);

struct BatchSummary {
  int64_t total = 0;
  int64_t pending = 0;
  int64_t processing = 0;
  int64_t completed = 0;
  int64_t failed = 0;
  int64_t retrying = 0;
  BatchStatus status = BatchStatus::kPending;
  bool settled = false;
  // Failed images that still have a retry left (attempts <= max_retries).
  int64_t retryable = 0;
  bool can_retry() const { return retryable > 0; }
  // "5/30 images processed" counts completed images; "2/30 images failed".
  std::string ProcessedText() const;
  std::string FailedText() const;
  double percentage() const;  // completed / total x 100
};

BatchSummary SummarizeBatch(const std::vector<store::BatchImageRow>& rows, int max_retries);

// Whether a failed image may be tried again (automatically or on request).
bool ImageMayRetry(const store::BatchImageRow& row, int max_retries);

}  // namespace tessera::jobs
