// Start-up clean-up: what requests of this server left behind when it died
// before they committed (kill -9, power loss): temporary upload files and batch
// folders still marked incomplete. Only this node's own leftovers are touched
// (their names carry its node id), since several servers may share a folder.
#pragma once

#include <functional>
#include <string>

namespace tessera::server {

struct LeftoversRemoved {
  int temporary_uploads = 0;
  int incomplete_batches = 0;
};

// `batch_committed(batch_id)`: the store has this batch (its upload committed and
// only the marker's removal was lost): the folder stays, the marker goes.
LeftoversRemoved RemoveLeftovers(const std::string& uploads_dir, const std::string& batch_root,
                                 const std::string& node_id,
                                 const std::function<bool(const std::string& batch_id)>& batch_committed);

}  // namespace tessera::server
