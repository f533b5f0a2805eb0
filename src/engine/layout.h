// How a 3-D feature map's values are ordered in memory. A backend writes the
// layout its kernels want (oneDNN's choice depends on the CPU: 8-channel blocks
// on AVX2, 16-channel blocks or channels-last on AVX-512); every op states which
// layouts it reads, and the executor converts only where a reader cannot read
// its producer's layout. 1-D vectors are always plain.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tessera::engine {

enum class Layout : uint8_t {
  kPlain,         // c x h x w (oneDNN nchw)
  kChannelsLast,  // h x w x c (oneDNN nhwc / acdb)
  kBlocked8,      // channels in groups of 8, the 8 innermost, last group zero-padded (nChw8c)
  kBlocked16,     // the same with groups of 16 (nChw16c)
};

inline constexpr Layout kAllLayouts[] = {Layout::kPlain, Layout::kChannelsLast, Layout::kBlocked8,
                                         Layout::kBlocked16};

// Channels per block: 1 for the unblocked layouts.
inline int ChannelBlock(Layout layout) {
  switch (layout) {
    case Layout::kBlocked8: return 8;
    case Layout::kBlocked16: return 16;
    default: return 1;
  }
}

// Channels once padded to a whole number of blocks.
inline int PaddedChannels(int channels, Layout layout) {
  const int block = ChannelBlock(layout);
  return (channels + block - 1) / block * block;
}

// The name users and logs see: "plain", "channels-last", "blocked8", "blocked16".
std::string_view LayoutName(Layout layout);
std::optional<Layout> ParseLayout(std::string_view name);

// A set of layouts, e.g. what an op reads without converting.
class LayoutSet {
 public:
  constexpr LayoutSet() = default;
  constexpr LayoutSet(std::initializer_list<Layout> layouts) {
    for (Layout l : layouts) bits_ |= Bit(l);
  }
  static constexpr LayoutSet All() { return LayoutSet({Layout::kPlain, Layout::kChannelsLast, Layout::kBlocked8, Layout::kBlocked16}); }
  static constexpr LayoutSet PlainOnly() { return LayoutSet({Layout::kPlain}); }

  constexpr bool Has(Layout l) const { return (bits_ & Bit(l)) != 0; }
  constexpr LayoutSet Intersect(LayoutSet other) const { return FromBits(bits_ & other.bits_); }
  constexpr LayoutSet With(Layout l) const { return FromBits(static_cast<uint8_t>(bits_ | Bit(l))); }
  constexpr bool empty() const { return bits_ == 0; }
  constexpr bool operator==(const LayoutSet&) const = default;

 private:
  static constexpr uint8_t Bit(Layout l) { return static_cast<uint8_t>(1u << static_cast<unsigned>(l)); }
  static constexpr LayoutSet FromBits(uint8_t bits) {
    LayoutSet s;
    s.bits_ = bits;
    return s;
  }
  uint8_t bits_ = 0;
};

}  // namespace tessera::engine
