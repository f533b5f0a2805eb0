#include "runtime/plan_choices.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <span>

#include "util/byte_order.h"
#include "util/file_io.h"
#include "util/log.h"

namespace tessera::runtime {
namespace {

void PutU32(std::vector<uint8_t>* out, uint32_t value) {
  uint8_t word[4];
  StoreLe32(word, value);
  out->insert(out->end(), word, word + 4);
}

}  // namespace

std::string ChoicesPathFor(const PlanCache& cache, const Sha256Digest& key) { return cache.PathFor(key) + ".choices"; }

std::vector<uint8_t> EncodeChoices(const Sha256Digest& key, const std::vector<std::string>& choices) {
  std::vector<uint8_t> out(kChoicesMagic, kChoicesMagic + sizeof kChoicesMagic);
  PutU32(&out, kChoicesFormatVersion);
  out.insert(out.end(), key.begin(), key.end());
  PutU32(&out, static_cast<uint32_t>(choices.size()));
  for (const std::string& choice : choices) {
    PutU32(&out, static_cast<uint32_t>(choice.size()));
    out.insert(out.end(), choice.begin(), choice.end());
  }
  const Sha256Digest digest = Sha256Of(out);
  out.insert(out.end(), digest.begin(), digest.end());
  return out;
}

std::optional<std::vector<std::string>> DecodeChoices(const std::vector<uint8_t>& bytes, const Sha256Digest& key) {
  constexpr size_t kFixed = sizeof kChoicesMagic + 4 + 32 + 4;
  if (bytes.size() < kFixed + 32) return std::nullopt;
  const size_t body = bytes.size() - 32;
  const Sha256Digest digest = Sha256Of(std::span<const uint8_t>(bytes.data(), body));
  if (!std::equal(digest.begin(), digest.end(), bytes.begin() + static_cast<std::ptrdiff_t>(body))) return std::nullopt;
  if (std::memcmp(bytes.data(), kChoicesMagic, sizeof kChoicesMagic) != 0) return std::nullopt;
  size_t at = sizeof kChoicesMagic;
  if (LoadLe32(bytes.data() + at) != kChoicesFormatVersion) return std::nullopt;
  at += 4;
  if (!std::equal(key.begin(), key.end(), bytes.begin() + static_cast<std::ptrdiff_t>(at))) return std::nullopt;
  at += 32;
  const uint32_t count = LoadLe32(bytes.data() + at);
  at += 4;
  if (count > kMaxChoiceLayers) return std::nullopt;
  std::vector<std::string> choices;
  choices.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    if (body - at < 4) return std::nullopt;
    const uint32_t length = LoadLe32(bytes.data() + at);
    at += 4;
    if (length > kMaxChoiceBytes || body - at < length) return std::nullopt;
    choices.emplace_back(reinterpret_cast<const char*>(bytes.data() + at), length);
    at += length;
  }
  if (at != body) return std::nullopt;
  return choices;
}

Status WriteChoices(const PlanCache& cache, const Sha256Digest& key, const std::vector<std::string>& choices) {
  for (const std::string& choice : choices) {
    if (choice.size() > kMaxChoiceBytes) return InvalidError("a layer's saved choice is over 256 bytes");
  }
  if (choices.size() > kMaxChoiceLayers) return InvalidError("too many layers for a choices file");
  std::error_code ec;
  std::filesystem::create_directories(cache.dir(), ec);
  if (ec) return IoError("create plan cache directory " + cache.dir() + ": " + ec.message());
  return WriteFileAtomically(ChoicesPathFor(cache, key), EncodeChoices(key, choices));
}

std::optional<std::vector<std::string>> ReadChoices(const PlanCache& cache, const Sha256Digest& key) {
  const std::string path = ChoicesPathFor(cache, key);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::nullopt;
  // A few bytes per layer: anything larger is not ours.
  Result<std::vector<uint8_t>> bytes = ReadFileBytes(path, 64ull << 20);
  std::optional<std::vector<std::string>> choices =
      bytes.ok() ? DecodeChoices(*bytes, key) : std::optional<std::vector<std::string>>();
  if (!choices) LogWarn("plan_choices").Field("status", "corrupt").Field("path", path).Field("effect", "chosen again");
  return choices;
}

}  // namespace tessera::runtime
