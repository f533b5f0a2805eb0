// Recording and replaying whole graph runs on Vulkan (vulkan_recording.h).
#include "engine/backends/vulkan/vulkan_recording.h"

#include <map>
#include <vector>

#include "engine/backends/vulkan/vulkan_backend.h"

namespace tessera::engine::vulkan {
namespace {

using Clock = std::chrono::steady_clock;

// Blocks of the backend's allocator, for a recording's arena (a caching
// allocator of its own over these): they stay the recording's until it ends.
class ArenaMemory final : public gpu::DeviceMemoryApi {
 public:
  ArenaMemory(std::shared_ptr<gpu::CachingAllocator> backing, std::shared_ptr<RecordingRegistry> recordings)
      : backing_(std::move(backing)), recordings_(std::move(recordings)) {}

  Result<void*> Allocate(uint64_t bytes) override {
    Result<gpu::DeviceBlock> block = AllocateOrDropRecordings(*backing_, *recordings_, bytes);
    if (!block.ok()) return block.status();
    void* pointer = block->data();
    std::lock_guard lock(mutex_);
    blocks_.emplace(pointer, std::move(block).value());
    return pointer;
  }
  void Free(void* pointer) override {
    gpu::DeviceBlock block;  // back to the backend's cache once the lock is let go
    std::lock_guard lock(mutex_);
    auto it = blocks_.find(pointer);
    if (it == blocks_.end()) return;
    block = std::move(it->second);
    blocks_.erase(it);
  }
  Result<gpu::DeviceMemoryInfo> Info() const override { return backing_->Probe(); }

 private:
  std::shared_ptr<gpu::CachingAllocator> backing_;
  std::shared_ptr<RecordingRegistry> recordings_;
  std::mutex mutex_;
  std::map<void*, gpu::DeviceBlock> blocks_;
};

}  // namespace

// What a recording keeps: its commands and every tensor they name.
class VulkanRecordedRun final : public RecordedRun {
 public:
  VulkanRecordedRun(const VulkanBackend& backend, std::shared_ptr<DeviceRecording> recording,
                    std::shared_ptr<gpu::CachingAllocator> arena, Tensor input, Tensor output,
                    std::vector<std::shared_ptr<const void>> kept)
      : backend_(backend),
        recording_(std::move(recording)),
        arena_(std::move(arena)),
        input_(std::move(input)),
        output_(std::move(output)),
        kept_(std::move(kept)) {
    const gpu::AllocatorStats stats = arena_->stats();
    bytes_ = stats.in_use_bytes + stats.cached_bytes;
    last_replay_ = Clock::now();
  }

  Result<Tensor> Replay(const Tensor& input) const override {
    if (SpanOf(input).buffer == VK_NULL_HANDLE || input.dims != input_.dims || input.n != input_.n ||
        input.c != input_.c || input.h != input_.h || input.w != input_.w || input.dtype != input_.dtype) {
      return InvalidError("a replay takes an input of the recorded shape, on the recording's backend");
    }
    // Before the lock: making room may give back this very recording's memory.
    Result<Tensor> out = backend_.NewTensor(output_.dims, output_.n, output_.c, output_.h, output_.w, output_.dtype);
    if (!out.ok()) return out.status();
    std::lock_guard lock(mutex_);
    if (!recording_) return Status(StatusCode::kUnavailable, "the recording's memory was given back");
    Status s = backend_.gpu().Replay(recording_, SpanOf(input), SpanOf(input_), SpanOf(output_), SpanOf(*out));
    if (!s.ok()) return s;
    last_replay_ = Clock::now();
    return out;
  }

  // Its memory back to the backend; later replays say kUnavailable. The
  // commands go once no batch executes them (DeviceRecording).
  void Drop() {
    std::lock_guard lock(mutex_);
    recording_.reset();
    input_.device.reset();
    output_.device.reset();
    kept_.clear();
    arena_.reset();
    bytes_ = 0;
  }

  uint64_t bytes() const {
    std::lock_guard lock(mutex_);
    return bytes_;
  }
  Clock::time_point last_replay() const {
    std::lock_guard lock(mutex_);
    return last_replay_;
  }

 private:
  const VulkanBackend& backend_;
  mutable std::mutex mutex_;
  std::shared_ptr<DeviceRecording> recording_;  // null once dropped
  std::shared_ptr<gpu::CachingAllocator> arena_;
  Tensor input_, output_;
  std::vector<std::shared_ptr<const void>> kept_;
  uint64_t bytes_ = 0;
  mutable Clock::time_point last_replay_;
};

// The recording being made on this thread (VulkanBackend::BeginCapture).
class VulkanCapture final : public RunCapture {
 public:
  VulkanCapture(const VulkanBackend& backend, std::shared_ptr<RecordingRegistry> recordings,
                std::shared_ptr<gpu::CachingAllocator> arena)
      : backend_(backend), recordings_(std::move(recordings)), arena_(std::move(arena)) {}
  ~VulkanCapture() override;

  Tensor input() const override { return input_; }
  Result<std::shared_ptr<RecordedRun>> Finish(const Tensor& output) override;

  const VulkanBackend& backend() const { return backend_; }
  gpu::CachingAllocator& arena() const { return *arena_; }
  void Keep(std::shared_ptr<const void> held) { kept_.push_back(std::move(held)); }
  // Set by BeginCapture.
  Tensor input_;
  std::shared_ptr<DeviceRecording> recording_;

 private:
  const VulkanBackend& backend_;
  std::shared_ptr<RecordingRegistry> recordings_;
  std::shared_ptr<gpu::CachingAllocator> arena_;
  std::vector<std::shared_ptr<const void>> kept_;
};

namespace {
thread_local VulkanCapture* t_capture = nullptr;
}  // namespace

VulkanCapture::~VulkanCapture() {
  // Abandoned (an op failed, or Finish did): the device recording retires itself.
  if (t_capture == this) t_capture = nullptr;
}

Result<std::shared_ptr<RecordedRun>> VulkanCapture::Finish(const Tensor& output) {
  if (t_capture != this) return InternalError("Finish of a recording this thread is not making");
  t_capture = nullptr;
  if (SpanOf(output).buffer == VK_NULL_HANDLE) return InvalidError("a recorded run's output is not this backend's");
  Status s = backend_.gpu().EndRecording(*recording_);
  if (!s.ok()) return s;
  auto run = std::make_shared<VulkanRecordedRun>(backend_, std::move(recording_), std::move(arena_),
                                                 std::move(input_), output, std::move(kept_));
  recordings_->Add(run);
  return std::shared_ptr<RecordedRun>(run);
}

// ---- the backend's side ----------------------------------------------------------

Result<std::unique_ptr<RunCapture>> VulkanBackend::BeginCapture(const Tensor& input) const {
  // Runs as they come: when not recording, inside another recording, or for
  // an input that is not a tensor of this backend.
  if (!options_.record_runs || t_capture != nullptr || SpanOf(input).buffer == VK_NULL_HANDLE ||
      input.dtype != options_.dtype || input.layout != Layout::kPlain) {
    return std::unique_ptr<RunCapture>();
  }
  recordings_->DropIdle(std::chrono::steady_clock::now(), options_.pool_idle_release);
  gpu::CachingAllocatorOptions arena_options;
  arena_options.idle_release = std::chrono::hours(24 * 365);  // the recording's until it ends
  auto arena = gpu::CachingAllocator::Create(std::make_shared<ArenaMemory>(allocator_, recordings_), arena_options);
  auto capture = std::make_unique<VulkanCapture>(*this, recordings_, std::move(arena));
  t_capture = capture.get();  // from here on, NewTensor on this thread takes the arena's memory
  Result<Tensor> in = NewTensor(input.dims, input.n, input.c, input.h, input.w, input.dtype);
  if (!in.ok()) return in.status();
  capture->input_ = std::move(in).value();
  Result<std::shared_ptr<DeviceRecording>> recording = device_->BeginRecording();
  if (!recording.ok()) return recording.status();
  capture->recording_ = std::move(recording).value();
  return std::unique_ptr<RunCapture>(std::move(capture));
}

void VulkanBackend::KeepWhileRecorded(std::shared_ptr<const void> held) const {
  if (t_capture != nullptr && &t_capture->backend() == this) t_capture->Keep(std::move(held));
}

Result<gpu::DeviceBlock> VulkanBackend::TensorMemory(uint64_t bytes) const {
  if (t_capture != nullptr && &t_capture->backend() == this) return t_capture->arena().Allocate(bytes);
  return AllocateOrDropRecordings(*allocator_, *recordings_, bytes);
}

uint64_t VulkanBackend::recorded_bytes() const { return recordings_->bytes(); }
size_t VulkanBackend::recordings() const { return recordings_->size(); }

// ---- the registry ----------------------------------------------------------------

Result<gpu::DeviceBlock> AllocateOrDropRecordings(gpu::CachingAllocator& allocator, RecordingRegistry& recordings,
                                                  uint64_t bytes) {
  while (true) {
    Result<gpu::DeviceBlock> block = allocator.Allocate(bytes);
    if (block.ok() || block.status().code() != StatusCode::kOutOfMemory || !recordings.DropOldest()) return block;
  }
}

std::vector<std::shared_ptr<VulkanRecordedRun>> RecordingRegistry::LiveLocked() const {
  std::vector<std::shared_ptr<VulkanRecordedRun>> live;
  std::vector<std::weak_ptr<VulkanRecordedRun>> kept;
  for (const auto& weak : runs_) {
    std::shared_ptr<VulkanRecordedRun> run = weak.lock();
    if (!run || run->bytes() == 0) continue;  // gone, or dropped already
    kept.push_back(weak);
    live.push_back(std::move(run));
  }
  runs_.swap(kept);
  return live;
}

void RecordingRegistry::Add(const std::shared_ptr<VulkanRecordedRun>& run) {
  std::lock_guard lock(mutex_);
  runs_.push_back(run);
}

bool RecordingRegistry::DropOldest() {
  std::shared_ptr<VulkanRecordedRun> oldest;
  {
    std::lock_guard lock(mutex_);
    for (auto& run : LiveLocked()) {
      if (!oldest || run->last_replay() < oldest->last_replay()) oldest = run;
    }
  }
  if (!oldest) return false;
  oldest->Drop();  // outside the lock: it takes the recording's own
  return true;
}

void RecordingRegistry::DropAll() {
  while (DropOldest()) {
  }
}

void RecordingRegistry::DropIdle(std::chrono::steady_clock::time_point now, std::chrono::milliseconds idle) {
  std::vector<std::shared_ptr<VulkanRecordedRun>> idle_runs;
  {
    std::lock_guard lock(mutex_);
    for (auto& run : LiveLocked()) {
      if (now - run->last_replay() >= idle) idle_runs.push_back(std::move(run));
    }
  }
  for (auto& run : idle_runs) run->Drop();
}

uint64_t RecordingRegistry::bytes() const {
  std::lock_guard lock(mutex_);
  uint64_t total = 0;
  for (const auto& run : LiveLocked()) total += run->bytes();
  return total;
}

size_t RecordingRegistry::size() const {
  std::lock_guard lock(mutex_);
  return LiveLocked().size();
}

}  // namespace tessera::engine::vulkan
