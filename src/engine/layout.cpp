#include "engine/layout.h"

namespace tessera::engine {

std::string_view LayoutName(Layout layout) {
  switch (layout) {
    case Layout::kPlain: return "plain";
    case Layout::kChannelsLast: return "channels-last";
    case Layout::kBlocked8: return "blocked8";
    case Layout::kBlocked16: return "blocked16";
  }
  return "unknown";
}

std::optional<Layout> ParseLayout(std::string_view name) {
  for (Layout layout : kAllLayouts) {
    if (LayoutName(layout) == name) return layout;
  }
  return std::nullopt;
}

}  // namespace tessera::engine
