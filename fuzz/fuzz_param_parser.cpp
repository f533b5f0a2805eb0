// libFuzzer target: arbitrary text through the ncnn .param parser and the layer
// checks, then (when it parses) through the weight loader with the same bytes as
// a .bin. Any crash, overflow or undefined behaviour is a bug; errors are fine.
#include <string_view>

#include "engine/ncnn/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto model = tessera::engine::ncnn::BuildModel("fuzz", text, "fuzz.param", {data, size}, "fuzz.bin");
  (void)model;
  return 0;
}
