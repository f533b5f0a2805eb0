// The dashboard's files (src/server/dashboard/), embedded in the binary at build
// time by cmake/EmbedFiles.cmake: the page needs nothing on disk or online.
#pragma once

#include <span>
#include <string_view>

namespace tessera::server {

struct DashboardAsset {
  std::string_view name;          // "index.html", "app.js": the path under the dashboard folder
  std::string_view content_type;  // from the extension
  std::string_view body;
  std::string_view etag;          // quoted, from the file's SHA-256
};

std::span<const DashboardAsset> DashboardAssets();

}  // namespace tessera::server
