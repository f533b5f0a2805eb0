// One image's upload for POST /upscale, below the HTTP routes: the image streamed
// to its temporary file as it arrives (memory: a fixed buffer, whatever its
// size) and refused at its first bytes when they match no image signature; the
// form's text fields beside it (4 KiB each at most). The route only parses the
// body (raw, or multipart) and answers.
//
// In a multipart form the image is the part named "image", else the first part
// that carries a file name; other file parts are ignored. A damaged image with
// a valid signature still fails later, in its job.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "jobs/upload_file.h"
#include "util/status.h"

namespace tessera::jobs {

class UpscaleUploadWriter {
 public:
  // The temporary file under `uploads_dir`, named after `node_id`; kIo when it
  // cannot be made.
  static Result<UpscaleUploadWriter> Start(const std::string& uploads_dir, const std::string& node_id);

  // The body is the image itself.
  Status ImageData(const char* data, size_t size);

  // A multipart part begins: the image when `name` is "image" or `filename` is
  // not empty (see above), else the text field `name`.
  Status BeginPart(const std::string& name, const std::string& filename);
  Status PartData(const char* data, size_t size);

  // The body ended: kInvalid without an image, kBadImage when its first bytes
  // are not an image's.
  Status Finish() const;

  // A text field of the form; nullopt when the form had none by that name.
  std::optional<std::string> Field(const std::string& name) const;
  uint64_t bytes() const { return file_->bytes(); }

  // Moves the image to `input_path` (the job's input, before it is committed);
  // until then the writer removes it when it goes.
  Status StoreAt(const std::string& input_path) { return file_->Commit(input_path); }

 private:
  explicit UpscaleUploadWriter(std::unique_ptr<UploadFile> file) : file_(std::move(file)) {}
  Status CheckSignature() const;

  std::unique_ptr<UploadFile> file_;
  std::map<std::string, std::string> fields_;
  std::string field_;        // the current part's name
  std::string image_field_;  // the part that holds the image ("" before one)
  enum class PartKind { kField, kImage, kIgnored };
  PartKind part_ = PartKind::kIgnored;  // data before any part header has nowhere to go
  std::string head_;  // the image's first bytes, for its signature
};

}  // namespace tessera::jobs
