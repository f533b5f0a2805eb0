// One Vulkan device opened for compute: its logical device and compute queue,
// the memory types tensors and staging use, one compute pipeline per embedded
// shader (built on first use through a VkPipelineCache, then shared by every op
// and backend on the device), and the one path by which work reaches the GPU.
//
// Work is batched. Run, Upload, Replay and Download record into the open
// batch, each command followed by a full barrier. A batch is submitted by
// Submit, or at a sync point:
//   - Download (the host needs the values: it waits for that batch),
//   - FreeBlock (memory goes back to the driver: it waits for every batch that
//     may use it),
//   - the batch's staging buffer is full (the next batch opens),
//   - Flush (tests, benchmarks, a caller that wants its work done now: waits).
// Up to kBatches batches are in flight at once, each with a command buffer,
// fence and staging buffer of its own, so the host records the next batch —
// and copies uploads into its staging — while the device runs the last one;
// a batch opens in a slot whose previous batch has completed (waiting for it
// if need be) and whose staging no Download still reads. Waiting releases the
// lock: other threads record and submit meanwhile (the model upscaler's two
// tile lanes on the host path: one tile's upload and recording overlap the
// other's compute). Batches run in submission order on one queue and each
// starts with a full barrier, so every command sees everything recorded
// before it, in any batch. Descriptor sets are kept across batches, by layout
// and bindings (DescriptorSetFor): written once, never updated, bound by every
// later dispatch naming the same ranges. When their pool is full, or memory
// goes back to the driver (a new buffer may take a freed one's handle), the
// pool is retired — reset once no batch that may bind its sets is open or
// running — and a fresh one takes its place, without a wait. Device memory
// handed back to the caching allocator and reused by a later command of the
// same or a later batch is safe without a wait: commands run in recording
// order (one queue, one lock while recording), and the barrier after every
// command orders the reuse after the previous user's reads and writes.
// Memory given back to the driver is the one case a reuse could escape that
// order, hence FreeBlock's wait.
// A recording (BeginRecording) is the one exception to "recorded into the open
// batch": while a thread records, its Run calls go into a command buffer of
// their own, with descriptor sets from pools of their own, which later batches
// execute (Replay) as often as they like; the barriers inside it order it like
// any other commands, and each batch keeps the recordings it executes alive
// until it has completed.
// A failed submission or wait loses the batch's work, which may be other
// threads' ops: the device then stays failed (every later call returns the
// first error) rather than let a later Download return stale values.
//
// Shared per process and device index (Open); thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "engine/backends/vulkan/vulkan_loader.h"
#include "engine/backends/vulkan/vulkan_pipeline_cache.h"
#include "engine/backends/vulkan/vulkan_shaders.h"
#include "util/status.h"

namespace tessera::engine::vulkan {

// A range of a storage buffer: what a shader binding or a copy names.
struct BufferSpan {
  VkBuffer buffer = VK_NULL_HANDLE;
  VkDeviceSize offset = 0;
  VkDeviceSize bytes = 0;
};

// One VkDeviceMemory with a storage buffer spanning it.
struct MemoryBlock {
  VkDeviceMemory memory = VK_NULL_HANDLE;
  VkBuffer buffer = VK_NULL_HANDLE;
  VkDeviceSize bytes = 0;
};

// What Run's callback records into: dispatches of the embedded shaders, each
// followed by a barrier, so a dispatch sees everything recorded before it.
class CommandRecorder {
 public:
  virtual ~CommandRecorder() = default;
  // `invocations` threads of `shader` over `buffers` (bindings 0..n-1, exactly
  // as many as the shader declares) with `push` as its push constants.
  virtual Status Dispatch(ShaderRef shader, std::span<const BufferSpan> buffers, const void* push, uint32_t push_bytes,
                          uint64_t invocations) = 0;
};

class VulkanDevice;

// Commands recorded once and executed by later batches (VulkanDevice::
// BeginRecording, Replay): a whole graph run for one input shape, whose every
// binding names memory the recording's owner keeps. Its command buffer and
// descriptor pools go back at the device's next batch after the last
// reference (a batch that executes it holds one until it has completed).
class DeviceRecording {
 public:
  ~DeviceRecording();
  DeviceRecording(const DeviceRecording&) = delete;
  DeviceRecording& operator=(const DeviceRecording&) = delete;
  // The dispatches recorded into it.
  uint64_t dispatches() const { return dispatches_; }

 private:
  friend class VulkanDevice;
  explicit DeviceRecording(std::shared_ptr<VulkanDevice> device) : device_(std::move(device)) {}
  std::shared_ptr<VulkanDevice> device_;
  VkCommandBuffer commands_ = VK_NULL_HANDLE;  // secondary, simultaneous use
  std::vector<VkDescriptorPool> pools_;        // sets for its dispatches, the last one being filled
  uint32_t sets_in_last_pool_ = 0;
  uint64_t dispatches_ = 0;
  bool ended_ = false;
};

// How much of the device-local heap is free, by the driver's report where it
// gives one (VK_EXT_memory_budget), else by what tessera itself holds.
struct HeapReport {
  uint64_t heap_bytes = 0;
  uint64_t held_bytes = 0;  // VkDeviceMemory this process holds on the device
  bool has_budget = false;  // the two below came from VK_EXT_memory_budget
  uint64_t budget_bytes = 0;
  uint64_t usage_bytes = 0;
};
uint64_t FreeDeviceBytes(const HeapReport& report);

class VulkanDevice : public std::enable_shared_from_this<VulkanDevice> {
 public:
  // The process's device `vulkan:index`, opened on first use; kDeviceUnavailable
  // with the reason when there is no loader, driver or such device.
  static Result<std::shared_ptr<VulkanDevice>> Open(int index);
  ~VulkanDevice();
  VulkanDevice(const VulkanDevice&) = delete;
  VulkanDevice& operator=(const VulkanDevice&) = delete;

  int index() const { return index_; }
  const VulkanPhysicalDevice& physical() const { return physical_; }
  // Storage-buffer offsets must be multiples of this.
  VkDeviceSize storage_alignment() const { return storage_alignment_; }
  // The largest range one binding may cover.
  uint64_t max_storage_range() const { return max_storage_range_; }

  // Device-local memory with a storage buffer over it; kOutOfMemory on
  // VK_ERROR_OUT_OF_DEVICE_MEMORY.
  Result<MemoryBlock> AllocateBlock(uint64_t bytes);
  void FreeBlock(const MemoryBlock& block);
  // The device-local heap now; `held` counted from AllocateBlock/FreeBlock.
  HeapReport MemoryReport() const;

  // Records work with `record` into the open batch (see the top of this file);
  // it runs by the next sync point.
  Status Run(const std::function<Status(CommandRecorder&)>& record);
  // Host values into a buffer range, and back, through a host-visible staging
  // buffer (the device's memory need not be host-visible). Upload copies
  // `data` into staging before it returns and records the copy; Download is a
  // sync point: the values are in `data` when it returns.
  Status Upload(const void* data, uint64_t bytes, const BufferSpan& to);
  Status Download(const BufferSpan& from, void* data, uint64_t bytes);
  // Submits the open batch and waits for every batch submitted (a sync point).
  Status Flush();
  // Submits the open batch without waiting for it: the device starts on it
  // while the caller records the next (at most kBatches in flight).
  Status Submit();

  // Starts recording on the calling thread: until EndRecording (or the
  // recording's destruction, which abandons it), this thread's Run calls on
  // this device record into the returned recording instead of the open batch.
  // Upload still records into the batch (so it runs before any replay), and
  // Download refuses: recorded work has not run. One recording per thread.
  Result<std::shared_ptr<DeviceRecording>> BeginRecording();
  Status EndRecording(DeviceRecording& recording);
  // Into the open batch, as one: `in` copied to `in_to` (the recorded input),
  // the recording, and `out_from` (the recorded output) copied to `out`; so
  // replays from several threads never interleave.
  Status Replay(const std::shared_ptr<DeviceRecording>& recording, const BufferSpan& in, const BufferSpan& in_to,
                const BufferSpan& out_from, const BufferSpan& out);
  // Dispatches recorded, into batches and recordings (tests: a replay records none).
  uint64_t dispatches_recorded() const { return dispatches_recorded_.load(); }
  uint64_t replays() const { return replays_.load(); }
  // Batches submitted so far (tests: that work is batched, not per op).
  uint64_t submissions() const { return submissions_.load(); }
  // Descriptor sets written, and dispatches that bound one written before.
  uint64_t descriptor_sets_written() const { return descriptor_sets_written_.load(); }
  uint64_t descriptor_sets_reused() const { return descriptor_sets_reused_.load(); }

  // Keeps the device's VkPipelineCache in `dir` (vulkan_pipeline_cache.h):
  // the file there, when valid, is merged into the cache (pipelines not built
  // yet come from it), and the cache is written there whenever a pipeline is
  // built and the cache's data differs from the file's — and at once when some
  // were built before. A directory already in
  // use is a no-op; an empty one stops keeping the cache on disk. Returns the bytes of pipeline data taken from the file (0:
  // none, or not valid: logged). Failures to write are logged, never fatal.
  uint64_t UsePipelineCacheDir(const std::string& dir);
  PipelineCacheKey pipeline_cache_key() const { return pipeline_cache_key_; }

 private:
  VulkanDevice(int index, const VulkanFunctions& fn, const VulkanPhysicalDevice& physical);
  Status Init();
  struct Pipeline {
    VkDescriptorSetLayout set_layout = VK_NULL_HANDLE;
    VkPipelineLayout layout = VK_NULL_HANDLE;
    VkPipeline pipeline = VK_NULL_HANDLE;
  };
  // Callers hold mutex_.
  Result<const Pipeline*> PipelineFor(ShaderRef shader);
  // The pipeline cache's data to its file (when a directory is set).
  void SavePipelineCacheLocked();
  // One batch: recorded while open, then in flight until its fence is seen.
  struct Batch {
    VkCommandBuffer commands = VK_NULL_HANDLE;
    VkFence fence = VK_NULL_HANDLE;
    MemoryBlock staging;  // host-visible: each transfer of the batch in a region of its own
    uint8_t* staging_mapped = nullptr;
    uint64_t staging_used = 0;
    uint32_t commands_recorded = 0;
    uint64_t serial = 0;    // submission order (0: never opened)
    bool in_flight = false;  // submitted and not yet seen complete
    bool waited_on = false;  // a thread waits on its fence, the lock released
    int readers = 0;         // Downloads still copying out of its staging
    std::vector<std::shared_ptr<DeviceRecording>> recordings;  // it executes: kept until it completes
  };
  static constexpr int kBatches = 2;
  static constexpr uint32_t kMaxBindings = 6;  // the most any shader binds
  // The open batch, opening one when none is (in the next slot, after its
  // previous batch completed and its readers finished: may release the lock);
  // the first error of a failed batch.
  Result<Batch*> OpenLocked(std::unique_lock<std::mutex>& lock);
  // Submits the open batch, if any, without waiting; returns its serial (0: none).
  Result<uint64_t> SubmitLocked();
  // Until `batch` (in flight) has completed; releases the lock while waiting.
  Status WaitLocked(std::unique_lock<std::mutex>& lock, Batch& batch);
  // Submits the open batch and waits for every batch up to it.
  Status FlushLocked(std::unique_lock<std::mutex>& lock);
  // `bytes` of staging in the open batch, at *offset; *batch is that batch
  // (the open one may be submitted first when it has used the rest; a fresh
  // batch's staging grows when it is too small).
  Status TakeStaging(std::unique_lock<std::mutex>& lock, uint64_t bytes, Batch** batch, uint64_t* offset);
  // Replaces `batch`'s staging with a buffer of at least `bytes` (the batch is
  // open and has not used it).
  Status GrowStaging(Batch& batch, uint64_t bytes);
  // The descriptor set of `layout` naming `buffers`: written once and kept, so
  // the dispatches of every later tile that binds the same ranges (the caching
  // allocator hands a layer the same memory tile after tile) only bind it.
  // When the pool is full, it is retired and a fresh one started.
  Result<VkDescriptorSet> DescriptorSetFor(VkDescriptorSetLayout layout, std::span<const BufferSpan> buffers);
  // Forgets the kept sets: their pool retired until no batch that may bind
  // them is open or running, a fresh (or reset) pool in its place.
  Status RetireDescriptorPoolLocked();
  // Retired pools no batch may bind any more, reset for reuse.
  void ReclaimDescriptorPoolsLocked();
  // A buffer of `bytes` (at least) over memory of its own of `memory_type`.
  Result<MemoryBlock> CreateBlock(uint64_t bytes, VkBufferUsageFlags usage, uint32_t memory_type,
                                  const std::string& what);
  // A pool of `sets` storage-buffer sets; a set of `layout` from `pool` naming `buffers`.
  Result<VkDescriptorPool> NewDescriptorPool(uint32_t sets);
  Result<VkDescriptorSet> WriteNewSet(VkDescriptorPool pool, VkDescriptorSetLayout layout,
                                      std::span<const BufferSpan> buffers);
  // `buffers` as `set`'s bindings 0..n-1.
  void WriteSet(VkDescriptorSet set, std::span<const BufferSpan> buffers);
  // A set of `layout` naming `buffers` from `recording`'s own pools.
  Result<VkDescriptorSet> RecordingSetFor(DeviceRecording& recording, VkDescriptorSetLayout layout,
                                          std::span<const BufferSpan> buffers);
  // Command buffers and pools of recordings no longer referenced (no batch
  // holds them any more), freed under mutex_ (OpenLocked, the destructor).
  void Retire(VkCommandBuffer commands, std::vector<VkDescriptorPool> pools);
  void FreeRetiredLocked();
  friend class DeviceRecording;
  class Recorder;

  const int index_;
  const VulkanFunctions& fn_;
  const VulkanPhysicalDevice physical_;
  VkDevice device_ = VK_NULL_HANDLE;
  VkQueue queue_ = VK_NULL_HANDLE;
  uint32_t device_memory_type_ = 0;
  int device_heap_ = 0;
  int staging_memory_type_ = -1;
  VkDeviceSize storage_alignment_ = 256;
  uint64_t max_storage_range_ = 0;
  std::atomic<uint64_t> held_bytes_{0};

  std::mutex mutex_;  // everything below: the queue, the batches, staging, pools and pipelines
  std::condition_variable batch_done_;  // a batch completed, or its last reader finished
  VkCommandPool command_pool_ = VK_NULL_HANDLE;
  Batch batches_[kBatches];
  int open_ = -1;  // the batch being recorded, or -1
  int next_ = 0;   // the slot the next batch opens in
  uint64_t next_serial_ = 1;
  Status failed_;  // the first failed batch's error, kept
  std::atomic<uint64_t> submissions_{0};
  std::atomic<uint64_t> dispatches_recorded_{0};
  std::atomic<uint64_t> replays_{0};
  // Retire's: taken under retired_mutex_ alone (a leaf lock: a recording's
  // last reference may go while mutex_ is held).
  std::mutex retired_mutex_;
  std::vector<std::pair<VkCommandBuffer, std::vector<VkDescriptorPool>>> retired_;
  // The pool kept sets come from; retired ones with the last serial that may
  // bind their sets; reset ones, for reuse.
  VkDescriptorPool descriptor_pool_ = VK_NULL_HANDLE;
  std::vector<std::pair<uint64_t, VkDescriptorPool>> retired_pools_;
  std::vector<VkDescriptorPool> spare_pools_;
  // Descriptor sets kept, by their layout and bindings (DescriptorSetFor).
  std::map<std::vector<uint64_t>, VkDescriptorSet> sets_;
  std::atomic<uint64_t> descriptor_sets_written_{0};
  std::atomic<uint64_t> descriptor_sets_reused_{0};
  Pipeline pipelines_[kShaderVariantCount];
  VkPipelineCache pipeline_cache_ = VK_NULL_HANDLE;  // created at open, every pipeline built through it
  PipelineCacheKey pipeline_cache_key_;
  std::string pipeline_cache_dir_;  // empty: not kept on disk
  std::vector<uint8_t> pipeline_cache_on_disk_;  // the driver's data the file holds, as far as we know
};

}  // namespace tessera::engine::vulkan
