// Failure injection for tests: named points in the code that fail on demand.
//
// Off in production: nothing is armed unless a test arms it, in-process with
// ArmFailpoints() or in a server started with the test-only --test-failpoints
// flag. A disarmed point costs one relaxed atomic load.
//
//   "store.create_batch"       every hit fails
//   "upload.write@3"           only the 3rd hit fails
//   "engine.tile_alloc*2"      the first 2 hits fail, the later ones pass
#pragma once

#include <string>
#include <string_view>

#include "util/status.h"

namespace tessera {

// Arms a comma-separated list of points (replacing any armed before). kInvalid
// for a malformed spec.
Status ArmFailpoints(std::string_view spec);
void DisarmFailpoints();

// True when the point is armed and this hit should fail. Thread-safe.
bool FailpointHit(std::string_view name);

}  // namespace tessera
