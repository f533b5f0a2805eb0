// The compiled-plan cache on disk: what is expensive about preparing a model —
// the parsed, checked graph and its weights already converted to fp32 — kept in
// one binary file per key, so a later load reads it back instead of parsing the
// .param and converting the .bin again.
//
// Key: SHA-256 of the model's .param and .bin contents, the backend and device
// (PlanTarget), their fingerprint and the tile size. Hashing a large .bin costs more than a
// cached load saves, so the content digest is remembered in
// `<dir>/digests/<name hash>.digest`, with each file's device, inode, size and
// mtime (ns): while those match, the files are not read again.
// A plan is `<dir>/<64 hex digits of the key>.plan`:
//
//   offset size
//   0      8    magic "TSRPLAN\0"
//   8      4    format version (kPlanFormatVersion), u32 LE
//   12     8    schema hash (kPlanSchemaHash), u64 LE
//   20     32   key
//   52     8    creation time, unix seconds, u64 LE
//   60     8    payload length, u64 LE
//   68     32   payload checksum (PayloadChecksum: SHA-256 over a fast 64-bit
//               hash of each 4 MiB chunk, computed on several cores)
//   100    2    engine version length n, u16 LE (at most 64)
//   102    n    engine version (TESSERA_VERSION)
//   102+n  ...  payload: the model (SerializeModel), exactly `payload length` bytes
//
// Files are written atomically (a unique temporary file in the same directory,
// fsync, rename): two processes or threads writing one key leave one whole file.
// Reading never trusts the file: a file of another format, schema or engine
// version is kStale, a wrong magic or key is kForeign, a short file, a bad
// checksum or a payload that does not decode is kCorrupt; the caller rebuilds.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/ncnn/model.h"
#include "util/sha256.h"
#include "util/status.h"

namespace tessera::runtime {

inline constexpr char kPlanMagic[8] = {'T', 'S', 'R', 'P', 'L', 'A', 'N', '\0'};
inline constexpr uint32_t kPlanFormatVersion = 3;
// Bump with any change to the payload layout (SerializeModel) or to what the
// loader does to a model before it is stored.
inline constexpr uint64_t kPlanSchemaHash = 0x7e55e2a0'00000001ull;
inline constexpr size_t kPlanFixedHeaderBytes = 102;
inline constexpr size_t kPlanMaxEngineVersion = 64;

// `$HOME/.cache/tessera/plans`.
std::string DefaultPlanCacheDir();

// What makes a plan specific to this machine: the CPU model name from
// /proc/cpuinfo ("unknown-cpu" when it cannot be read).
std::string CpuFingerprint();

// What a plan is prepared for, part of its key: the device and backend
// ("cpu/onednn", "cuda:0/cuda"), and what decides how that backend prepares a
// model on this machine (the CPU model; oneDNN's version and ISA; the GPU).
struct PlanTarget {
  std::string backend;
  std::string fingerprint;
};
PlanTarget PlanTargetFor(const engine::Backend& backend);
// The CPU's default backend's target (engine/backend_registry.h).
PlanTarget DefaultPlanTarget();

// The engine version written in, and required of, every file.
std::string PlanEngineVersion();

// SHA-256 of a model's .param and .bin contents (each length-prefixed).
Sha256Digest ModelDigest(std::span<const uint8_t> param_bytes, std::span<const uint8_t> bin_bytes);
Sha256Digest PlanKey(const Sha256Digest& model_digest, const std::string& backend,
                     const std::string& device_fingerprint, int tile_size);
inline Sha256Digest PlanKey(std::span<const uint8_t> param_bytes, std::span<const uint8_t> bin_bytes,
                            const std::string& backend, const std::string& device_fingerprint, int tile_size) {
  return PlanKey(ModelDigest(param_bytes, bin_bytes), backend, device_fingerprint, tile_size);
}

// The header's checksum of a payload: SHA-256 over the payload's length and a
// fast 64-bit hash of each 4 MiB chunk (corruption, not tampering: the cache is
// the user's own), the chunks hashed on up to 8 threads.
Sha256Digest PayloadChecksum(std::span<const uint8_t> payload);

// The model in the payload format: length-prefixed fields, little-endian.
std::vector<uint8_t> SerializeModel(const engine::ncnn::Model& model);
// The inverse. Every length is checked against the bytes left, and the result is
// checked like a freshly parsed model (known layers and parameters, blob indices
// in range, weight sizes matching the parameters), so any input gives a model
// the engine can run or an error — never a read out of bounds.
Result<engine::ncnn::Model> DeserializeModel(std::span<const uint8_t> payload);

enum class PlanLookup { kHit, kMiss, kStale, kCorrupt, kForeign };
const char* PlanLookupName(PlanLookup lookup);  // "hit", "miss", "stale", ...

struct PlanReadResult {
  PlanLookup lookup = PlanLookup::kMiss;
  std::optional<engine::ncnn::Model> model;  // set for kHit only
  std::string detail;                        // why it was not a hit
};

// A whole plan file for `key` (header + payload).
std::vector<uint8_t> EncodePlanFile(const Sha256Digest& key, const engine::ncnn::Model& model);
// Decodes a whole plan file's bytes expected to hold `key`.
PlanReadResult DecodePlanFile(std::span<const uint8_t> bytes, const Sha256Digest& key);

// Thread-safe: holds only its directory.
class PlanCache {
 public:
  explicit PlanCache(std::string dir) : dir_(std::move(dir)) {}

  const std::string& dir() const { return dir_; }
  std::string PathFor(const Sha256Digest& key) const;

  // kMiss when there is no file; other non-hits are logged
  // (event=plan_cache status=stale|corrupt|foreign path=...).
  PlanReadResult Read(const Sha256Digest& key) const;
  // Creates the directory when missing, then writes atomically.
  Status Write(const Sha256Digest& key, const engine::ncnn::Model& model) const;

 private:
  std::string dir_;
};

// Loads `<model_dir>/<name>.param|.bin` through `cache`: a hit skips parsing and
// conversion; anything else builds the model with ncnn::BuildModel and writes the
// plan (a failed write is logged, the model still returned). Logs
// event=plan_cache status=hit|miss|written ms=... . `tile_size` is the resolved
// tile edge and `target` the backend that will run it, both part of the key.
// `key_out` (optional) receives the plan's key (runtime/plan_choices.h files
// sit beside it).
Result<engine::ncnn::Model> LoadModelWithPlanCache(const PlanCache& cache, const std::string& model_dir,
                                                   const std::string& name, int tile_size,
                                                   const PlanTarget& target = DefaultPlanTarget(),
                                                   Sha256Digest* key_out = nullptr);

}  // namespace tessera::runtime
