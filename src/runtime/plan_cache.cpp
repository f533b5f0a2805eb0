#include "runtime/plan_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "engine/backend_registry.h"
#include "engine/ncnn/layer_table.h"
#include "engine/ncnn/param_parser.h"
#include "util/byte_order.h"
#include "util/deadline.h"
#include "util/fd_io.h"
#include "util/file_io.h"
#include "util/log.h"

#ifndef TESSERA_VERSION
#define TESSERA_VERSION "0.0.0"
#endif

namespace tessera::runtime {
namespace {

using engine::ncnn::LayerSpec;
using engine::ncnn::LayerWeights;
using engine::ncnn::Model;
using engine::ncnn::ParamValue;

// Bounds on what a payload may declare, on top of the parser's own limits.
constexpr uint32_t kMaxStringBytes = 1u << 16;
constexpr uint32_t kMaxParamsPerLayer = 32;  // ids 0..31, as the parser allows
constexpr int kMaxParamId = 31;

void PutString(ByteWriter* w, std::string_view s) {
  w->U32(static_cast<uint32_t>(s.size()));
  w->Bytes(s);
}

void PutFloats(std::vector<uint8_t>* out, const std::vector<float>& values) {
  ByteWriter(out).U64(values.size());
  const size_t at = out->size();
  out->resize(at + values.size() * sizeof(float));
  if constexpr (std::endian::native == std::endian::little) {
    if (!values.empty()) std::memcpy(out->data() + at, values.data(), values.size() * sizeof(float));
  } else {
    for (size_t i = 0; i < values.size(); ++i) {
      StoreLe32(out->data() + at + 4 * i, std::bit_cast<uint32_t>(values[i]));
    }
  }
}

// Reads the payload's fields; each read checks the bytes left first.
class PayloadReader {
 public:
  explicit PayloadReader(std::span<const uint8_t> bytes) : cursor_(bytes) {}

  size_t remaining() const { return cursor_.remaining(); }

  bool U32(uint32_t* v) { return cursor_.ReadU32(v); }
  bool I32(int32_t* v) { return cursor_.ReadI32(v); }
  bool U64(uint64_t* v) { return cursor_.ReadU64(v); }
  bool U8(uint8_t* v) {
    std::span<const uint8_t> b;
    if (!cursor_.ReadBytes(1, &b)) return false;
    *v = b[0];
    return true;
  }
  bool String(std::string* out) {
    uint32_t n = 0;
    std::span<const uint8_t> b;
    if (!U32(&n) || n > kMaxStringBytes || !cursor_.ReadBytes(n, &b)) return false;
    out->assign(reinterpret_cast<const char*>(b.data()), b.size());
    return true;
  }
  // A count of elements of `element_bytes` each that must fit in what is left.
  bool Count(uint32_t* n, uint32_t max, size_t element_bytes) {
    return U32(n) && *n <= max && static_cast<uint64_t>(*n) * element_bytes <= remaining();
  }
  bool Floats(std::vector<float>* out) {
    uint64_t n = 0;
    if (!U64(&n) || n > remaining() / sizeof(float)) return false;
    std::span<const uint8_t> b;
    if (!cursor_.ReadBytes(static_cast<size_t>(n) * sizeof(float), &b)) return false;
    out->resize(static_cast<size_t>(n));
    if constexpr (std::endian::native == std::endian::little) {
      if (n != 0) std::memcpy(out->data(), b.data(), b.size());
    } else {
      for (size_t i = 0; i < n; ++i) (*out)[i] = std::bit_cast<float>(LoadLe32(b.data() + 4 * i));
    }
    return true;
  }

 private:
  ByteCursor cursor_;
};

// A parameter value the accessors can read without undefined behaviour: scalars
// hold one number, arrays at most kMaxArrayLength; numbers are finite and fit an int.
bool ValidParamValue(const ParamValue& v) {
  if (!v.is_array && v.numbers.size() != 1) return false;
  if (v.numbers.size() > static_cast<size_t>(engine::ncnn::kMaxArrayLength)) return false;
  for (double d : v.numbers) {
    if (!std::isfinite(d) || d < -2147483648.0 || d > 2147483647.0) return false;
  }
  return true;
}

// Each field length-prefixed, so no two different field lists hash the same bytes.
void LengthPrefixed(Sha256* h, std::span<const uint8_t> bytes) {
  uint8_t len[8];
  StoreLe64(len, bytes.size());
  h->Update(len);
  h->Update(bytes);
}
void LengthPrefixed(Sha256* h, std::string_view text) {
  LengthPrefixed(h, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

Status Corrupt(const std::string& what) { return InvalidError("plan payload: " + what); }

Result<LayerSpec> ReadLayer(PayloadReader* r, size_t layer_index) {
  LayerSpec layer;
  const std::string at = "layer " + std::to_string(layer_index) + ": ";
  if (!r->String(&layer.type) || !r->String(&layer.name)) return Corrupt(at + "truncated name");
  layer.kind = engine::ncnn::KindOf(layer.type);
  for (std::vector<int>* io : {&layer.bottoms, &layer.tops}) {
    uint32_t n = 0;
    if (!r->Count(&n, engine::ncnn::kMaxLayerIo, 4)) return Corrupt(at + "bad blob count");
    io->resize(n);
    for (uint32_t i = 0; i < n; ++i) {
      int32_t b = 0;
      r->I32(&b);  // cannot fail: Count checked the bytes
      (*io)[i] = b;
    }
  }
  int32_t line = 0;
  uint32_t params = 0;
  if (!r->I32(&line) || !r->Count(&params, kMaxParamsPerLayer, 9)) return Corrupt(at + "bad parameter count");
  layer.line = line;
  for (uint32_t i = 0; i < params; ++i) {
    int32_t id = 0;
    uint8_t flags = 0;
    uint32_t count = 0;
    if (!r->I32(&id) || !r->U8(&flags) || !r->Count(&count, engine::ncnn::kMaxArrayLength, 8)) {
      return Corrupt(at + "truncated parameter");
    }
    if (id < 0 || id > kMaxParamId || layer.params.Has(id) || flags > 3) return Corrupt(at + "bad parameter id");
    ParamValue v;
    v.is_array = (flags & 1) != 0;
    v.is_float = (flags & 2) != 0;
    v.numbers.resize(count);
    for (uint32_t k = 0; k < count; ++k) {
      uint64_t bits = 0;
      r->U64(&bits);
      v.numbers[k] = std::bit_cast<double>(bits);
    }
    if (!ValidParamValue(v)) return Corrupt(at + "bad parameter " + std::to_string(id));
    layer.params.Set(id, std::move(v));
  }
  return layer;
}

uint64_t UnixSeconds() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

std::vector<uint8_t> EncodeHeader(const Sha256Digest& key, std::span<const uint8_t> payload) {
  std::vector<uint8_t> header;
  ByteWriter w(&header);
  w.Bytes(std::string_view(kPlanMagic, sizeof(kPlanMagic)));
  w.U32(kPlanFormatVersion);
  w.U64(kPlanSchemaHash);
  w.Bytes(key);
  w.U64(UnixSeconds());
  w.U64(payload.size());
  w.Bytes(PayloadChecksum(payload));
  const std::string version = PlanEngineVersion().substr(0, kPlanMaxEngineVersion);
  w.U16(static_cast<uint16_t>(version.size()));
  w.Bytes(version);
  return header;
}

// Writes `parts` to a fresh temporary file next to `path`, fsyncs it and renames
// it over `path`. The temporary name is unique (mkstemp), so concurrent writers
// of one path never share a temporary file; the last rename wins, whole.
Status WriteAtomically(const std::string& path, std::initializer_list<std::span<const uint8_t>> parts) {
  std::string temp = path + ".tmp.XXXXXX";
  int fd = ::mkstemp(temp.data());
  if (fd < 0) return IoError("create a temporary file for " + path + ": " + std::strerror(errno));
  Status written = Status::Ok();
  for (std::span<const uint8_t> part : parts) {
    if (!written.ok()) break;
    written = WriteFull(fd, part);
  }
  if (written.ok() && ::fchmod(fd, 0644) != 0) written = IoError("chmod " + temp + ": " + std::strerror(errno));
  if (written.ok() && ::fsync(fd) != 0) written = IoError("fsync " + temp + ": " + std::strerror(errno));
  if (::close(fd) != 0 && written.ok()) written = IoError("close " + temp + ": " + std::strerror(errno));
  if (written.ok() && ::rename(temp.c_str(), path.c_str()) != 0) {
    written = IoError("rename " + temp + " to " + path + ": " + std::strerror(errno));
  }
  if (!written.ok()) ::unlink(temp.c_str());
  return written;
}

Result<std::string> ReadText(const std::string& path) {
  Result<std::vector<uint8_t>> bytes = ReadFileBytes(path);
  if (!bytes.ok()) return bytes.status();
  return std::string(bytes->begin(), bytes->end());
}

// What identifies a file's contents without reading them, for the digest memo.
struct FileStamp {
  uint64_t device = 0, inode = 0, size = 0, mtime_ns = 0;
  bool operator==(const FileStamp&) const = default;
};

std::optional<FileStamp> StampOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return FileStamp{
      static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino), static_cast<uint64_t>(st.st_size),
      static_cast<uint64_t>(st.st_mtim.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(st.st_mtim.tv_nsec)};
}

constexpr char kDigestMagic[8] = {'T', 'S', 'R', 'D', 'G', 'S', 'T', '1'};
constexpr size_t kDigestMemoBytes = 8 + 2 * 32 + 32;

std::string DigestMemoPath(const PlanCache& cache, const std::string& param_file, const std::string& bin_file) {
  return cache.dir() + "/digests/" + ToHex(Sha256Of(param_file + "\n" + bin_file)).substr(0, 32) + ".digest";
}

void PutStamp(ByteWriter* w, const FileStamp& s) {
  w->U64(s.device);
  w->U64(s.inode);
  w->U64(s.size);
  w->U64(s.mtime_ns);
}

// The remembered digest when both files still have the stamps it was taken with.
std::optional<Sha256Digest> ReadDigestMemo(const std::string& path, const FileStamp& param, const FileStamp& bin) {
  Result<std::vector<uint8_t>> bytes = ReadFileBytes(path, kDigestMemoBytes);
  if (!bytes.ok() || bytes->size() != kDigestMemoBytes) return std::nullopt;
  std::vector<uint8_t> expected;
  ByteWriter w(&expected);
  w.Bytes(std::string_view(kDigestMagic, sizeof(kDigestMagic)));
  PutStamp(&w, param);
  PutStamp(&w, bin);
  if (!std::equal(expected.begin(), expected.end(), bytes->begin())) return std::nullopt;
  Sha256Digest digest;
  std::copy(bytes->end() - 32, bytes->end(), digest.begin());
  return digest;
}

void WriteDigestMemo(const std::string& path, const FileStamp& param, const FileStamp& bin,
                     const Sha256Digest& digest) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  std::vector<uint8_t> bytes;
  ByteWriter w(&bytes);
  w.Bytes(std::string_view(kDigestMagic, sizeof(kDigestMagic)));
  PutStamp(&w, param);
  PutStamp(&w, bin);
  w.Bytes(digest);
  Status written = ec ? IoError(ec.message()) : WriteAtomically(path, {bytes});
  if (!written.ok())
    LogWarn("plan_cache").Field("status", "write_failed").Field("path", path).Field("error", written.message());
}

}  // namespace

std::string DefaultPlanCacheDir() {
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr && *home != '\0' ? home : ".") + "/.cache/tessera/plans";
}

std::string CpuFingerprint() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    size_t colon = line.find(':');
    if (colon == std::string::npos) break;
    size_t start = line.find_first_not_of(" \t", colon + 1);
    return start == std::string::npos ? "unknown-cpu" : line.substr(start);
  }
  return "unknown-cpu";
}

std::string PlanEngineVersion() { return TESSERA_VERSION; }

Sha256Digest ModelDigest(std::span<const uint8_t> param_bytes, std::span<const uint8_t> bin_bytes) {
  Sha256 h;
  LengthPrefixed(&h, "tessera-model");
  LengthPrefixed(&h, param_bytes);
  LengthPrefixed(&h, bin_bytes);
  return h.Finish();
}

Sha256Digest PlanKey(const Sha256Digest& model_digest, const std::string& backend,
                     const std::string& device_fingerprint, int tile_size) {
  Sha256 h;
  LengthPrefixed(&h, "tessera-plan-key");
  LengthPrefixed(&h, model_digest);
  LengthPrefixed(&h, backend);
  LengthPrefixed(&h, device_fingerprint);
  LengthPrefixed(&h, std::to_string(tile_size));
  return h.Finish();
}

namespace {

// A fast 64-bit hash of one chunk, for detecting corruption (not tampering: the
// cache is the user's own folder). Four multiply-rotate lanes over 8-byte words,
// then the tail, then a final mix, so that any changed byte changes the result.
// About ten times faster than SHA-256 here, which decides how fast a big
// model's plan loads.
uint64_t ChunkHash(std::span<const uint8_t> data) {
  constexpr uint64_t kOdd1 = 0x9E3779B185EBCA87ull;
  constexpr uint64_t kOdd2 = 0xC2B2AE3D27D4EB4Full;
  const uint8_t* p = data.data();
  const size_t n = data.size();
  uint64_t lanes[4] = {kOdd1 + kOdd2, kOdd2, 0, 0 - kOdd1};
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int l = 0; l < 4; ++l) {
      lanes[l] = std::rotl(lanes[l] + LoadLe64(p + i + 8 * l) * kOdd2, 31) * kOdd1;
    }
  }
  uint64_t h = std::rotl(lanes[0], 1) + std::rotl(lanes[1], 7) + std::rotl(lanes[2], 12) + std::rotl(lanes[3], 18) +
               static_cast<uint64_t>(n);
  for (; i + 8 <= n; i += 8) {
    h ^= std::rotl(LoadLe64(p + i) * kOdd2, 31) * kOdd1;
    h = std::rotl(h, 27) * kOdd1 + kOdd2;
  }
  for (; i < n; ++i) {
    h ^= p[i] * kOdd1;
    h = std::rotl(h, 11) * kOdd2;
  }
  h ^= h >> 33;
  h *= kOdd2;
  h ^= h >> 29;
  h *= kOdd1;
  h ^= h >> 32;
  return h;
}

}  // namespace

Sha256Digest PayloadChecksum(std::span<const uint8_t> payload) {
  constexpr size_t kChunk = 4u << 20;
  const size_t chunks = std::max<size_t>(1, (payload.size() + kChunk - 1) / kChunk);
  std::vector<uint64_t> hashes(chunks);
  std::atomic<size_t> next = 0;
  auto work = [&] {
    for (size_t i = next++; i < chunks; i = next++) {
      const size_t at = std::min(i * kChunk, payload.size());
      hashes[i] = ChunkHash(payload.subspan(at, std::min(kChunk, payload.size() - at)));
    }
  };
  const size_t threads = std::min<size_t>({chunks, std::max(1u, std::thread::hardware_concurrency()), 8});
  {
    std::vector<std::jthread> helpers;
    for (size_t t = 1; t < threads; ++t) helpers.emplace_back(work);
    work();
  }
  Sha256 h;
  LengthPrefixed(&h, "tessera-plan-payload-v3");
  uint8_t word[8];
  StoreLe64(word, payload.size());
  h.Update(word);
  for (uint64_t chunk_hash : hashes) {
    StoreLe64(word, chunk_hash);
    h.Update(word);
  }
  return h.Finish();
}

std::vector<uint8_t> SerializeModel(const Model& model) {
  std::vector<uint8_t> out;
  uint64_t floats = 0;
  for (const LayerWeights& w : model.weights) floats += w.weight.size() + w.bias.size();
  out.reserve(static_cast<size_t>(floats) * sizeof(float) + (64u << 10));
  ByteWriter w(&out);
  PutString(&w, model.name);
  w.U32(static_cast<uint32_t>(model.graph.blob_names.size()));
  for (const std::string& blob : model.graph.blob_names) PutString(&w, blob);
  w.U32(static_cast<uint32_t>(model.graph.layers.size()));
  for (const LayerSpec& layer : model.graph.layers) {
    PutString(&w, layer.type);
    PutString(&w, layer.name);
    for (const std::vector<int>* io : {&layer.bottoms, &layer.tops}) {
      w.U32(static_cast<uint32_t>(io->size()));
      for (int b : *io) w.I32(b);
    }
    w.I32(layer.line);
    w.U32(static_cast<uint32_t>(layer.params.all().size()));
    for (const auto& [id, value] : layer.params.all()) {
      w.I32(id);
      out.push_back(static_cast<uint8_t>((value.is_array ? 1 : 0) | (value.is_float ? 2 : 0)));
      w.U32(static_cast<uint32_t>(value.numbers.size()));
      for (double d : value.numbers) w.U64(std::bit_cast<uint64_t>(d));
    }
  }
  w.U32(static_cast<uint32_t>(model.weights.size()));
  for (const LayerWeights& lw : model.weights) {
    PutFloats(&out, lw.weight);
    PutFloats(&out, lw.bias);
  }
  return out;
}

Result<Model> DeserializeModel(std::span<const uint8_t> payload) {
  PayloadReader r(payload);
  Model model;
  if (!r.String(&model.name)) return Corrupt("truncated model name");
  uint32_t blobs = 0;
  if (!r.Count(&blobs, engine::ncnn::kMaxBlobs, 4)) return Corrupt("bad blob count");
  model.graph.blob_names.resize(blobs);
  for (std::string& name : model.graph.blob_names) {
    if (!r.String(&name)) return Corrupt("truncated blob name");
  }
  uint32_t layers = 0;
  if (!r.Count(&layers, engine::ncnn::kMaxLayers, 4) || layers == 0) return Corrupt("bad layer count");
  model.graph.layers.reserve(layers);
  // The parser's guarantees: a layer reads only blobs produced before it, and
  // blobs are numbered in the order they are produced, each once.
  int produced = 0;
  for (uint32_t i = 0; i < layers; ++i) {
    Result<LayerSpec> layer = ReadLayer(&r, i);
    if (!layer.ok()) return layer.status();
    for (int b : layer->bottoms) {
      if (b < 0 || b >= produced) return Corrupt("layer " + std::to_string(i) + " reads a blob not produced yet");
    }
    for (int t : layer->tops) {
      if (t != produced || t >= static_cast<int>(blobs)) {
        return Corrupt("layer " + std::to_string(i) + " produces blobs out of order");
      }
      ++produced;
    }
    Status supported = engine::ncnn::CheckLayerSupported(*layer, "plan");
    if (!supported.ok()) return Corrupt(supported.message());
    model.graph.layers.push_back(std::move(layer).value());
  }
  if (produced != static_cast<int>(blobs)) return Corrupt("blob names do not match the layers");
  uint32_t weights = 0;
  if (!r.U32(&weights) || weights != layers) return Corrupt("weights do not match the layers");
  model.weights.resize(layers);
  for (uint32_t i = 0; i < layers; ++i) {
    LayerWeights& lw = model.weights[i];
    if (!r.Floats(&lw.weight) || !r.Floats(&lw.bias)) return Corrupt("truncated weights");
    // What BuildModel read, by the same rule: the sizes the executor indexes safely.
    const engine::ncnn::WeightArrays expected = engine::ncnn::WeightArraysOf(model.graph.layers[i]);
    if (lw.weight.size() != expected.weight || lw.bias.size() != expected.bias) {
      return Corrupt("layer " + std::to_string(i) + " weights do not match its parameters");
    }
  }
  if (r.remaining() != 0) return Corrupt(std::to_string(r.remaining()) + " bytes after the weights");
  return model;
}

const char* PlanLookupName(PlanLookup lookup) {
  switch (lookup) {
    case PlanLookup::kHit: return "hit";
    case PlanLookup::kMiss: return "miss";
    case PlanLookup::kStale: return "stale";
    case PlanLookup::kCorrupt: return "corrupt";
    case PlanLookup::kForeign: return "foreign";
  }
  return "unknown";
}

std::vector<uint8_t> EncodePlanFile(const Sha256Digest& key, const Model& model) {
  std::vector<uint8_t> payload = SerializeModel(model);
  std::vector<uint8_t> file = EncodeHeader(key, payload);
  file.insert(file.end(), payload.begin(), payload.end());
  return file;
}

PlanReadResult DecodePlanFile(std::span<const uint8_t> bytes, const Sha256Digest& key) {
  PlanReadResult result;
  auto fail = [&](PlanLookup lookup, std::string detail) {
    result.lookup = lookup;
    result.detail = std::move(detail);
    return std::move(result);
  };
  ByteCursor c(bytes);
  std::span<const uint8_t> magic, stored_key, checksum, version;
  uint32_t format = 0;
  uint64_t schema = 0, created = 0, payload_length = 0;
  uint16_t version_length = 0;
  if (!c.ReadBytes(sizeof(kPlanMagic), &magic)) return fail(PlanLookup::kCorrupt, "shorter than the header");
  if (!std::equal(magic.begin(), magic.end(), reinterpret_cast<const uint8_t*>(kPlanMagic))) {
    return fail(PlanLookup::kForeign, "not a plan file (magic)");
  }
  if (!c.ReadU32(&format)) return fail(PlanLookup::kCorrupt, "shorter than the header");
  if (format != kPlanFormatVersion) return fail(PlanLookup::kStale, "format version " + std::to_string(format));
  if (!c.ReadU64(&schema) || !c.ReadBytes(32, &stored_key) || !c.ReadU64(&created) || !c.ReadU64(&payload_length) ||
      !c.ReadBytes(32, &checksum) || !c.ReadU16(&version_length) || version_length > kPlanMaxEngineVersion ||
      !c.ReadBytes(version_length, &version)) {
    return fail(PlanLookup::kCorrupt, "shorter than the header");
  }
  if (schema != kPlanSchemaHash) return fail(PlanLookup::kStale, "schema hash differs");
  const std::string engine_version(version.begin(), version.end());
  if (engine_version != PlanEngineVersion()) return fail(PlanLookup::kStale, "engine version " + engine_version);
  if (!std::equal(stored_key.begin(), stored_key.end(), key.begin())) {
    return fail(PlanLookup::kForeign, "written for another key");
  }
  if (payload_length != c.remaining()) {
    return fail(PlanLookup::kCorrupt, "payload is " + std::to_string(c.remaining()) + " bytes, header says " +
                                          std::to_string(payload_length));
  }
  std::span<const uint8_t> payload;
  c.ReadBytes(c.remaining(), &payload);
  const Sha256Digest actual = PayloadChecksum(payload);
  if (!std::equal(checksum.begin(), checksum.end(), actual.begin())) {
    return fail(PlanLookup::kCorrupt, "payload checksum mismatch");
  }
  Result<Model> model = DeserializeModel(payload);
  if (!model.ok()) return fail(PlanLookup::kCorrupt, model.status().message());
  result.lookup = PlanLookup::kHit;
  result.model = std::move(model).value();
  return result;
}

std::string PlanCache::PathFor(const Sha256Digest& key) const { return dir_ + "/" + ToHex(key) + ".plan"; }

PlanReadResult PlanCache::Read(const Sha256Digest& key) const {
  const std::string path = PathFor(key);
  // Mapped, not copied: the weights are decoded straight out of the page cache
  // (a copy of 67 MB into fresh memory was half of realesrgan-x4plus's plan read).
  Result<MappedFile> bytes = MappedFile::Open(path);
  if (!bytes.ok()) {
    PlanReadResult miss;
    miss.lookup = bytes.status().code() == StatusCode::kNotFound ? PlanLookup::kMiss : PlanLookup::kCorrupt;
    miss.detail = bytes.status().message();
    if (miss.lookup != PlanLookup::kMiss) {
      LogWarn("plan_cache")
          .Field("status", PlanLookupName(miss.lookup))
          .Field("path", path)
          .Field("detail", miss.detail);
    }
    return miss;
  }
  PlanReadResult result = DecodePlanFile(bytes->bytes(), key);
  if (result.lookup != PlanLookup::kHit) {
    LogWarn("plan_cache")
        .Field("status", PlanLookupName(result.lookup))
        .Field("path", path)
        .Field("detail", result.detail);
  }
  return result;
}

Status PlanCache::Write(const Sha256Digest& key, const Model& model) const {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return IoError("create plan cache directory " + dir_ + ": " + ec.message());
  std::vector<uint8_t> payload = SerializeModel(model);
  std::vector<uint8_t> header = EncodeHeader(key, payload);
  return WriteAtomically(PathFor(key), {header, payload});
}

PlanTarget PlanTargetFor(const engine::Backend& backend) {
  static const std::string cpu = CpuFingerprint();
  return {backend.device().Name() + "/" + backend.name(), cpu + "|" + backend.Fingerprint()};
}

PlanTarget DefaultPlanTarget() {
  Result<engine::BackendSet> cpu = engine::BackendsFor(engine::Device::Cpu());
  if (!cpu.ok()) return {"cpu/none", CpuFingerprint()};
  return PlanTargetFor(*cpu->backend);
}

Result<Model> LoadModelWithPlanCache(const PlanCache& cache, const std::string& model_dir, const std::string& name,
                                     int tile_size, const PlanTarget& target, Sha256Digest* key_out) {
  const auto started = std::chrono::steady_clock::now();
  const std::string param_file = model_dir + "/" + name + ".param";
  const std::string bin_file = model_dir + "/" + name + ".bin";
  auto key_of = [&](const Sha256Digest& digest) {
    return PlanKey(digest, target.backend, target.fingerprint, tile_size);
  };
  auto hit = [&](PlanReadResult* read) -> Model {
    read->model->name = name;  // the key is the content: a copy under another name shares the plan
    LogInfo("plan_cache").Field("status", "hit").Field("model", name).Field("ms", MillisSince(started));
    return std::move(*read->model);
  };

  // Stamps taken before reading: a file changed while it is read gets a new stamp.
  const std::optional<FileStamp> param_stamp = StampOf(param_file);
  const std::optional<FileStamp> bin_stamp = StampOf(bin_file);
  const std::string memo_path = DigestMemoPath(cache, param_file, bin_file);
  std::optional<Sha256Digest> remembered;
  if (param_stamp && bin_stamp) remembered = ReadDigestMemo(memo_path, *param_stamp, *bin_stamp);
  if (remembered) {
    if (key_out != nullptr) *key_out = key_of(*remembered);
    PlanReadResult read = cache.Read(key_of(*remembered));
    if (read.lookup == PlanLookup::kHit) return hit(&read);
  }

  Result<std::string> param = ReadText(param_file);
  if (!param.ok()) return Status(StatusCode::kNotFound, "model '" + name + "': cannot open " + param_file);
  Result<std::vector<uint8_t>> bin = ReadFileBytes(bin_file);
  if (!bin.ok()) return Status(StatusCode::kNotFound, "model '" + name + "': cannot open " + bin_file);
  const std::span<const uint8_t> param_bytes(reinterpret_cast<const uint8_t*>(param->data()), param->size());
  const Sha256Digest digest = ModelDigest(param_bytes, *bin);
  const Sha256Digest key = key_of(digest);
  if (key_out != nullptr) *key_out = key;
  if (remembered != digest) {
    if (param_stamp && bin_stamp) WriteDigestMemo(memo_path, *param_stamp, *bin_stamp, digest);
    PlanReadResult read = cache.Read(key);
    if (read.lookup == PlanLookup::kHit) return hit(&read);
  }

  Result<Model> built = engine::ncnn::BuildModel(name, *param, param_file, *bin, bin_file);
  if (!built.ok()) return built.status();
  LogInfo("plan_cache")
      .Field("status", "miss")
      .Field("model", name)
      .Field("ms", MillisSince(started))
      .Field("path", cache.PathFor(key));
  const auto write_started = std::chrono::steady_clock::now();
  Status written = cache.Write(key, *built);
  if (written.ok()) {
    LogInfo("plan_cache").Field("status", "written").Field("model", name).Field("ms", MillisSince(write_started));
  } else {
    LogWarn("plan_cache").Field("status", "write_failed").Field("model", name).Field("error", written.message());
  }
  return built;
}

}  // namespace tessera::runtime
