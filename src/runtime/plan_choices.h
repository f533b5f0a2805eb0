// What a backend chose while running a model — the cuDNN algorithm of each
// convolution, say — kept beside the model's plan (runtime/plan_cache.h), so
// that a later process on the same device, driver and library versions (the
// plan key holds the backend's fingerprint) starts with the same choices
// instead of asking again. Op::SavedChoice / RestoreChoice say what a layer's
// choice is; an op checks what it is given back and chooses again when it
// cannot use it, so a stale or damaged file costs a choice, never a result.
//
// `<plan path>.choices`:
//   offset size
//   0      8    magic "TSRCHOS\0"
//   8      4    format version (kChoicesFormatVersion), u32 LE
//   12     32   the plan's key
//   44     4    layer count n, u32 LE
//   48     ...  per layer: u32 LE length (at most kMaxChoiceBytes), then its bytes
//   end-32 32   SHA-256 of everything before it
// Written atomically; any mismatch on reading is "no choices".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/plan_cache.h"
#include "util/sha256.h"
#include "util/status.h"

namespace tessera::runtime {

inline constexpr char kChoicesMagic[8] = {'T', 'S', 'R', 'C', 'H', 'O', 'S', '\0'};
inline constexpr uint32_t kChoicesFormatVersion = 1;
inline constexpr size_t kMaxChoiceBytes = 256;
inline constexpr size_t kMaxChoiceLayers = 1u << 16;

std::string ChoicesPathFor(const PlanCache& cache, const Sha256Digest& key);

std::vector<uint8_t> EncodeChoices(const Sha256Digest& key, const std::vector<std::string>& choices);
// nullopt for anything but a whole file of this format and key.
std::optional<std::vector<std::string>> DecodeChoices(const std::vector<uint8_t>& bytes, const Sha256Digest& key);

Status WriteChoices(const PlanCache& cache, const Sha256Digest& key, const std::vector<std::string>& choices);
// nullopt when there is no file or it is not usable (logged: event=plan_choices status=corrupt).
std::optional<std::vector<std::string>> ReadChoices(const PlanCache& cache, const Sha256Digest& key);

}  // namespace tessera::runtime
