#include "server/startup_cleanup.h"

#include <unistd.h>

#include <filesystem>

#include "jobs/batch_upload.h"
#include "jobs/upload_file.h"

namespace tessera::server {

namespace fs = std::filesystem;

LeftoversRemoved RemoveLeftovers(const std::string& uploads_dir, const std::string& batch_root,
                                 const std::string& node_id,
                                 const std::function<bool(const std::string& batch_id)>& batch_committed) {
  LeftoversRemoved removed;
  std::error_code error;
  const std::string prefix = jobs::TempUploadPrefix(node_id);
  for (const auto& entry : fs::directory_iterator(uploads_dir, error)) {
    std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) == 0 && ::unlink(entry.path().c_str()) == 0) ++removed.temporary_uploads;
  }
  // data/games/<game>/batches/<batch>/.incomplete-<node>
  const std::string marker = jobs::BatchIncompleteMarker(node_id);
  for (const auto& game : fs::directory_iterator(batch_root + "/games", error)) {
    std::error_code inner;
    for (const auto& batch : fs::directory_iterator(game.path() / "batches", inner)) {
      std::error_code ignored;
      if (!fs::exists(batch.path() / marker, ignored)) continue;
      if (batch_committed(batch.path().filename().string())) {
        fs::remove(batch.path() / marker, ignored);
      } else if (fs::remove_all(batch.path(), ignored) > 0) {
        ++removed.incomplete_batches;
      }
    }
  }
  return removed;
}

}  // namespace tessera::server
