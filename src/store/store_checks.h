// Internal to src/store: the checks every store implementation makes on its
// arguments before it writes anything, so that SQLite and PostgreSQL refuse the
// same things with the same words (the conformance suite holds both to it).
#pragma once

#include <string>
#include <vector>

#include "store/batch.h"
#include "store/job.h"
#include "util/status.h"

namespace tessera::store::checks {

bool ValidProgress(double progress);
// "<operation>: progress <p> is outside [0, 1]"
std::string ProgressOutOfRange(const std::string& operation, double progress);

// CreateBatch's arguments agree with each other (batch_store.h): a batch id,
// as many jobs as images and as total_images says, each image with an id, of
// this batch and naming its own job, each job of this batch. kInvalid naming
// the first disagreement. What only the database can tell (an id that exists,
// two images at one position) is left to its constraints.
Status CheckNewBatch(const Batch& batch, const std::vector<BatchImage>& images, const std::vector<Job>& jobs);

}  // namespace tessera::store::checks
