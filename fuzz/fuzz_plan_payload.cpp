// libFuzzer target: arbitrary bytes through the plan cache's model decoder
// (src/runtime/plan_cache.h DeserializeModel), which reads files from disk that
// may be truncated or corrupt. Any crash, overflow or undefined behaviour is a
// bug; errors are fine. Seeds: serialized real models (make fuzz copies them).
#include <span>

#include "runtime/plan_cache.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto model = tessera::runtime::DeserializeModel(std::span<const uint8_t>(data, size));
  (void)model;
  return 0;
}
