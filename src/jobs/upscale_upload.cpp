#include "jobs/upscale_upload.h"

#include <algorithm>
#include <span>

#include "imaging/image_magic.h"

namespace tessera::jobs {

namespace {
constexpr size_t kMaxFieldBytes = 4096;
}  // namespace

Result<UpscaleUploadWriter> UpscaleUploadWriter::Start(const std::string& uploads_dir, const std::string& node_id) {
  auto file = UploadFile::Create(uploads_dir, node_id);
  if (!file.ok()) return file.status();
  return UpscaleUploadWriter(std::move(*file));
}

Status UpscaleUploadWriter::ImageData(const char* data, size_t size) {
  if (head_.size() < imaging::kImageMagicBytes) {
    head_.append(data, std::min(size, imaging::kImageMagicBytes - head_.size()));
    if (head_.size() == imaging::kImageMagicBytes) {
      if (Status image = CheckSignature(); !image.ok()) return image;
    }
  }
  return file_->Write(data, size);
}

Status UpscaleUploadWriter::BeginPart(const std::string& name, const std::string& filename) {
  field_ = name;
  bool image = name == "image" || !filename.empty();
  if (!image) {
    part_ = PartKind::kField;
    fields_[field_].clear();
    return Status::Ok();
  }
  // Keep the first image, unless a part named "image" comes after another file.
  if (!image_field_.empty() && (image_field_ == "image" || name != "image")) {
    part_ = PartKind::kIgnored;
    return Status::Ok();
  }
  if (!image_field_.empty()) {
    if (Status restarted = file_->Restart(); !restarted.ok()) return restarted;
    head_.clear();
  }
  image_field_ = name;
  part_ = PartKind::kImage;
  return Status::Ok();
}

Status UpscaleUploadWriter::PartData(const char* data, size_t size) {
  if (part_ == PartKind::kImage) return ImageData(data, size);
  if (part_ == PartKind::kIgnored) return Status::Ok();
  std::string& value = fields_[field_];
  if (value.size() + size > kMaxFieldBytes) {
    return InvalidError("form field " + field_ + " is longer than " + std::to_string(kMaxFieldBytes) + " bytes");
  }
  value.append(data, size);
  return Status::Ok();
}

Status UpscaleUploadWriter::Finish() const {
  if (file_->bytes() == 0) {
    return InvalidError("no image: send it as the body, or as a multipart file field named \"image\"");
  }
  return CheckSignature();
}

std::optional<std::string> UpscaleUploadWriter::Field(const std::string& name) const {
  auto it = fields_.find(name);
  if (it == fields_.end()) return std::nullopt;
  return it->second;
}

Status UpscaleUploadWriter::CheckSignature() const {
  auto bytes = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(head_.data()), head_.size());
  if (imaging::SniffImageFormat(bytes)) return Status::Ok();
  return BadImageError("the upload is not an image: its first bytes match no image format (" +
                       std::string(imaging::KnownImageFormats()) + ")");
}

}  // namespace tessera::jobs
