// Protocol v2 ("BRDR"): constants, enums and the stable status codes.
// docs/protocol.md is the human-readable version of this file; keep them in step.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "util/status.h"

namespace tessera::protocol {

inline constexpr uint32_t kMagic = 0x42524452;  // bytes 52 44 52 42 on the wire
inline constexpr uint16_t kVersion = 2;
inline constexpr size_t kLengthPrefixSize = 4;  // u32 message_len before every payload
inline constexpr size_t kHeaderSize = 16;       // magic u32 + version u16 + msg_type u16 + request_id u64
inline constexpr size_t kMaxQualityBytes = 256;
inline constexpr size_t kMaxErrorBytes = 1024;  // longer error texts are cut at a UTF-8 boundary

enum class MessageType : uint16_t { kRequest = 1, kResponse = 2 };

enum class Engine : uint32_t { kRealEsrgan = 1, kRealCugan = 2, kWaifu2x = 3, kLanczos = 4 };

// Stable: values never change meaning; new codes are only ever appended.
enum class WireStatus : uint32_t {
  kOk = 0,
  kProtocol = 1,  // bad magic / version / type, truncated frame
  kInvalid = 2,   // validation, count mismatch, unknown engine or model
  kLimit = 3,     // batch, message, image bytes, pixels, RAM budget
  kBadImage = 4,  // undecodable image; the message names the index
  kOutOfMemory = 5,
  kDeviceUnavailable = 6,
  kTimeout = 7,
  kInternal = 8,
  kUnsupported = 9,
};

std::string_view EngineName(Engine engine);                   // "realesrgan", ...
std::optional<Engine> EngineFromWire(uint32_t value);         // nullopt when unknown
std::optional<Engine> EngineFromName(std::string_view name);  // accepts the names above
std::string_view WireStatusName(WireStatus status);           // "OK", "PROTOCOL", ...

// The one mapping from internal errors to wire codes.
WireStatus ToWireStatus(StatusCode code);

}  // namespace tessera::protocol
