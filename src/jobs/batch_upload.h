// An image batch's upload, below the HTTP routes (seed 004): where the batch's
// files go, each uploaded image streamed to its original's file as it arrives
// (never held whole in memory), the form fields beside them, and the NewBatch
// the images make once all arrived. The route only parses the multipart body
// and answers.
//
// Folder: <data>/games/<game_id>/batches/<batch_id>/{originals,results}. Until
// the batch is created, the folder carries a marker naming this server's node
// (BatchIncompleteMarker); start-up clean-up removes folders that still carry
// it. A refused or interrupted upload is removed whole (Discard).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "jobs/batch_runner.h"
#include "util/status.h"

namespace tessera::jobs {

// ".incomplete-<node_id>": the marker of a batch folder whose upload has not committed.
std::string BatchIncompleteMarker(const std::string& node_id);

// Whether a client's id (game_id) is safe in a path: letters, digits, '_' and '-', 64 at most.
bool IsSafeBatchId(const std::string& text);

class BatchUploadWriter {
 public:
  // Creates the batch's folders and marker under `data_dir`; kInvalid for an
  // unsafe game id, kIo when the folders cannot be made.
  static Result<BatchUploadWriter> Start(const std::string& data_dir, const std::string& game_id,
                                         const std::string& node_id);
  BatchUploadWriter(BatchUploadWriter&& other) noexcept;
  BatchUploadWriter& operator=(BatchUploadWriter&&) = delete;
  BatchUploadWriter(const BatchUploadWriter&) = delete;
  // Removes the folder unless the batch was committed.
  ~BatchUploadWriter();

  // A new part: an image when `filename` is not empty (its bytes go to its
  // original's file), else the form field `name` (4 KiB at most). false after
  // any error (error() says which).
  bool BeginPart(const std::string& name, const std::string& filename);
  bool Data(const char* data, size_t size);
  // Closes (and fsyncs) the last file; false when anything failed.
  bool Finish();

  const std::string& error() const { return error_; }
  std::string Field(const std::string& name) const;
  size_t image_count() const { return images_.size(); }
  uint64_t bytes() const { return bytes_; }
  const std::string& batch_id() const { return batch_id_; }
  const std::string& game_id() const { return game_id_; }

  // The batch to create from the images received: each result named after its
  // original, with `extension` (".png"); the images move into it.
  NewBatch TakeBatch(const std::string& params_json, const std::string& extension, const std::string& webhook_url,
                     const std::string& client);
  // The batch was created: keep the folder and drop its incomplete marker.
  void Commit();

 private:
  BatchUploadWriter(std::string game_id, std::string batch_id, std::string dir, std::string node_id);
  bool Fail(std::string message);
  void CloseFile();

  std::string game_id_, batch_id_, dir_, node_id_;
  std::vector<NewBatchImage> images_;
  std::map<std::string, std::string> fields_;
  std::string field_name_;
  bool in_file_ = false;
  int fd_ = -1;
  uint64_t bytes_ = 0;
  std::string error_;
  bool committed_ = false;
};

}  // namespace tessera::jobs
