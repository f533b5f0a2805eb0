// How work reaches a Vulkan device (vulkan_device.h, "Work is batched"): the
// batches in flight, their staging, the kept descriptor sets, the transfers,
// and recordings replayed by later batches.
#include <algorithm>
#include <cstring>
#include <vector>

#include "engine/backends/vulkan/vulkan_device.h"
#include "engine/backends/vulkan/vulkan_kernels.h"

namespace tessera::engine::vulkan {
namespace {

constexpr uint32_t kGroupSize = 64;     // every shader's local_size_x
constexpr uint32_t kMaxGroups = 65535;  // per dimension: the least every device allows
constexpr uint32_t kCachedSets = 1024;  // descriptor sets written and kept per pool (DescriptorSetFor)
constexpr uint32_t kRecordingPoolSets = 64;  // per descriptor pool of a recording
constexpr uint64_t kMinStagingBytes = 4ull << 20;
constexpr uint64_t kStagingAlignment = 256;  // each transfer's region of staging starts on it

// Every earlier write (shaders, copies, the host) visible to every later access.
void FullBarrier(const VulkanFunctions& fn, VkCommandBuffer commands) {
  VkMemoryBarrier barrier{};
  barrier.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER;
  barrier.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_HOST_WRITE_BIT;
  barrier.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                          VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_HOST_READ_BIT;
  fn.vkCmdPipelineBarrier(commands, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT,
                          VK_PIPELINE_STAGE_ALL_COMMANDS_BIT | VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &barrier, 0, nullptr,
                          0, nullptr);
}

// The recording the calling thread records into (VulkanDevice::BeginRecording).
thread_local DeviceRecording* t_recording = nullptr;

}  // namespace

// ---- recording ----------------------------------------------------------------

class VulkanDevice::Recorder : public CommandRecorder {
 public:
  // Callers hold device.mutex_, with a batch open (into which it records) or
  // a recording to record into.
  Recorder(VulkanDevice& device, DeviceRecording* recording) : device_(device), recording_(recording) {}

  Status Dispatch(ShaderRef shader, std::span<const BufferSpan> buffers, const void* push, uint32_t push_bytes,
                  uint64_t invocations) override {
    const VulkanFunctions& fn = device_.fn_;
    if (invocations == 0) return Status::Ok();
    Result<const Pipeline*> pipeline = device_.PipelineFor(shader);
    if (!pipeline.ok()) return pipeline.status();
    const ShaderInterface interface = InterfaceOf(shader.id);
    if (static_cast<int>(buffers.size()) != interface.buffers || push_bytes != interface.push_bytes) {
      return InternalError("a dispatch of shader " + std::to_string(static_cast<int>(shader.id)) +
                           " does not match its bindings or push constants");
    }
    const uint64_t groups = (invocations + kGroupSize - 1) / kGroupSize;
    const uint32_t groups_x = static_cast<uint32_t>(std::min<uint64_t>(groups, kMaxGroups));
    const uint64_t groups_y = (groups + groups_x - 1) / groups_x;
    if (groups_y > kMaxGroups) return InvalidError("a tensor too large for one dispatch");
    for (const BufferSpan& b : buffers) {
      if (b.buffer == VK_NULL_HANDLE || b.bytes == 0) return InternalError("an empty shader binding");
    }

    // Never releases the lock: the batch open now takes the commands. A
    // recording's sets come from its own pools.
    Result<VkDescriptorSet> set = recording_ != nullptr
                                      ? device_.RecordingSetFor(*recording_, (*pipeline)->set_layout, buffers)
                                      : device_.DescriptorSetFor((*pipeline)->set_layout, buffers);
    if (!set.ok()) return set.status();
    Batch* batch = recording_ != nullptr ? nullptr : &device_.batches_[device_.open_];
    const VkCommandBuffer commands = recording_ != nullptr ? recording_->commands_ : batch->commands;
    fn.vkCmdBindPipeline(commands, VK_PIPELINE_BIND_POINT_COMPUTE, (*pipeline)->pipeline);
    fn.vkCmdBindDescriptorSets(commands, VK_PIPELINE_BIND_POINT_COMPUTE, (*pipeline)->layout, 0, 1, &*set, 0,
                               nullptr);
    fn.vkCmdPushConstants(commands, (*pipeline)->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, push_bytes, push);
    fn.vkCmdDispatch(commands, groups_x, static_cast<uint32_t>(groups_y), 1);
    // The next command (of this batch or a later one) sees this one's writes,
    // and may reuse memory this one read.
    FullBarrier(fn, commands);
    ++device_.dispatches_recorded_;
    if (recording_ != nullptr) {
      ++recording_->dispatches_;
    } else {
      ++batch->commands_recorded;
    }
    return Status::Ok();
  }

 private:
  VulkanDevice& device_;
  DeviceRecording* recording_;
};

// ---- batches ------------------------------------------------------------------

Result<VulkanDevice::Batch*> VulkanDevice::OpenLocked(std::unique_lock<std::mutex>& lock) {
  while (true) {
    if (!failed_.ok()) return failed_;
    if (open_ >= 0) return &batches_[open_];
    Batch& batch = batches_[next_];
    if (batch.in_flight) {
      Status s = WaitLocked(lock, batch);
      if (!s.ok()) return s;
      continue;  // the lock was let go: look again
    }
    if (batch.readers > 0) {
      batch_done_.wait(lock);
      continue;
    }
    // No batch is recording, and the slot's previous batch has completed.
    FreeRetiredLocked();
    Status s = VulkanStatus(fn_.vkResetCommandBuffer(batch.commands, 0), "vkResetCommandBuffer");
    VkCommandBufferBeginInfo begin{};
    begin.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO;
    begin.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    if (s.ok()) s = VulkanStatus(fn_.vkBeginCommandBuffer(batch.commands, &begin), "vkBeginCommandBuffer");
    if (!s.ok()) {
      failed_ = s;
      return s;
    }
    // Everything earlier batches did — and host writes to staging — visible to this one.
    FullBarrier(fn_, batch.commands);
    batch.serial = next_serial_++;
    batch.staging_used = 0;
    batch.commands_recorded = 0;
    open_ = next_;
    next_ = (next_ + 1) % kBatches;
    ReclaimDescriptorPoolsLocked();
    return &batch;
  }
}

Result<uint64_t> VulkanDevice::SubmitLocked() {
  if (!failed_.ok()) return failed_;
  if (open_ < 0) return uint64_t{0};
  Batch& batch = batches_[open_];
  open_ = -1;
  const std::string where = "vulkan:" + std::to_string(index_);
  Status s = VulkanStatus(fn_.vkEndCommandBuffer(batch.commands), "vkEndCommandBuffer on " + where);
  if (s.ok() && batch.commands_recorded > 0) {
    VkSubmitInfo submit{};
    submit.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO;
    submit.commandBufferCount = 1;
    submit.pCommandBuffers = &batch.commands;
    s = VulkanStatus(fn_.vkQueueSubmit(queue_, 1, &submit, batch.fence), "vkQueueSubmit on " + where);
    if (s.ok()) {
      batch.in_flight = true;
      ++submissions_;
    }
  }
  if (!s.ok()) {
    failed_ = s;
    return s;
  }
  return batch.serial;
}

Status VulkanDevice::WaitLocked(std::unique_lock<std::mutex>& lock, Batch& batch) {
  while (batch.in_flight) {
    if (batch.waited_on) {  // another thread waits on its fence: it says when
      batch_done_.wait(lock);
      continue;
    }
    batch.waited_on = true;
    const VkFence fence = batch.fence;
    lock.unlock();
    // Only this thread touches the fence until in_flight goes false below.
    Status s = VulkanStatus(fn_.vkWaitForFences(device_, 1, &fence, VK_TRUE, UINT64_MAX),
                            "running work on vulkan:" + std::to_string(index_));
    lock.lock();
    batch.waited_on = false;
    if (s.ok()) s = VulkanStatus(fn_.vkResetFences(device_, 1, &batch.fence), "vkResetFences");
    batch.in_flight = false;
    // Done (or failed for good: a failed device frees nothing before its end).
    batch.recordings.clear();
    if (!s.ok() && failed_.ok()) failed_ = s;
    batch_done_.notify_all();
    if (!s.ok()) return s;
  }
  return failed_;
}

Status VulkanDevice::FlushLocked(std::unique_lock<std::mutex>& lock) {
  Result<uint64_t> submitted = SubmitLocked();
  if (!submitted.ok()) return submitted.status();
  const uint64_t last = next_serial_ - 1;  // every batch opened so far (none is open now)
  // Oldest first; a slot reused meanwhile holds a later batch, not waited for.
  while (true) {
    Batch* oldest = nullptr;
    for (Batch& b : batches_) {
      if (b.in_flight && b.serial <= last && (oldest == nullptr || b.serial < oldest->serial)) oldest = &b;
    }
    if (oldest == nullptr) return failed_;
    Status s = WaitLocked(lock, *oldest);
    if (!s.ok()) return s;
  }
}

Status VulkanDevice::Flush() {
  std::unique_lock lock(mutex_);
  return FlushLocked(lock);
}

Status VulkanDevice::Submit() {
  std::lock_guard lock(mutex_);
  return SubmitLocked().status();
}

Status VulkanDevice::Run(const std::function<Status(CommandRecorder&)>& record) {
  std::unique_lock lock(mutex_);
  if (t_recording != nullptr && t_recording->device_.get() == this) {
    if (!failed_.ok()) return failed_;
    Recorder recorder(*this, t_recording);
    return record(recorder);
  }
  Result<Batch*> batch = OpenLocked(lock);
  if (!batch.ok()) return batch.status();
  // Nothing below lets the lock go: the whole of `record` goes into this batch.
  Recorder recorder(*this, nullptr);
  return record(recorder);
}

// ---- descriptor sets ------------------------------------------------------------

Result<VkDescriptorSet> VulkanDevice::DescriptorSetFor(VkDescriptorSetLayout layout,
                                                       std::span<const BufferSpan> buffers) {
  std::vector<uint64_t> key;
  key.reserve(1 + 3 * buffers.size());
  key.push_back(reinterpret_cast<uint64_t>(layout));
  for (const BufferSpan& b : buffers) {
    key.insert(key.end(), {reinterpret_cast<uint64_t>(b.buffer), b.offset, b.bytes});
  }
  if (auto it = sets_.find(key); it != sets_.end()) {
    ++descriptor_sets_reused_;
    return it->second;
  }
  if (sets_.size() >= kCachedSets) {
    Status s = RetireDescriptorPoolLocked();
    if (!s.ok()) return s;
  }
  // Written once, never again: a set a pending batch binds is never updated.
  Result<VkDescriptorSet> set = WriteNewSet(descriptor_pool_, layout, buffers);
  if (set.ok()) sets_.emplace(std::move(key), *set);
  return set;
}

Result<VkDescriptorPool> VulkanDevice::NewDescriptorPool(uint32_t sets) {
  VkDescriptorPoolSize sizes{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, sets * kMaxBindings};
  VkDescriptorPoolCreateInfo info{};
  info.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO;
  info.maxSets = sets;
  info.poolSizeCount = 1;
  info.pPoolSizes = &sizes;
  VkDescriptorPool pool = VK_NULL_HANDLE;
  Status s = VulkanStatus(fn_.vkCreateDescriptorPool(device_, &info, nullptr, &pool), "vkCreateDescriptorPool");
  if (!s.ok()) return s;
  return pool;
}

Result<VkDescriptorSet> VulkanDevice::WriteNewSet(VkDescriptorPool pool, VkDescriptorSetLayout layout,
                                                  std::span<const BufferSpan> buffers) {
  VkDescriptorSetAllocateInfo allocate{};
  allocate.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO;
  allocate.descriptorPool = pool;
  allocate.descriptorSetCount = 1;
  allocate.pSetLayouts = &layout;
  VkDescriptorSet set = VK_NULL_HANDLE;
  Status s = VulkanStatus(fn_.vkAllocateDescriptorSets(device_, &allocate, &set), "vkAllocateDescriptorSets");
  if (!s.ok()) return s;
  WriteSet(set, buffers);
  ++descriptor_sets_written_;
  return set;
}

void VulkanDevice::WriteSet(VkDescriptorSet set, std::span<const BufferSpan> buffers) {
  VkDescriptorBufferInfo infos[kMaxBindings];
  VkWriteDescriptorSet writes[kMaxBindings];
  for (size_t i = 0; i < buffers.size(); ++i) {
    infos[i] = {buffers[i].buffer, buffers[i].offset, buffers[i].bytes};
    writes[i] = {};
    writes[i].sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET;
    writes[i].dstSet = set;
    writes[i].dstBinding = static_cast<uint32_t>(i);
    writes[i].descriptorCount = 1;
    writes[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    writes[i].pBufferInfo = &infos[i];
  }
  fn_.vkUpdateDescriptorSets(device_, static_cast<uint32_t>(buffers.size()), writes, 0, nullptr);
}

Status VulkanDevice::RetireDescriptorPoolLocked() {
  VkDescriptorPool fresh = VK_NULL_HANDLE;
  if (!spare_pools_.empty()) {
    fresh = spare_pools_.back();
    spare_pools_.pop_back();
  } else {
    Result<VkDescriptorPool> pool = NewDescriptorPool(kCachedSets);
    if (!pool.ok()) return pool.status();
    fresh = *pool;
  }
  if (descriptor_pool_ != VK_NULL_HANDLE) {
    // The open batch (or the last one submitted) is the last that may bind its sets.
    const uint64_t last = open_ >= 0 ? batches_[open_].serial : next_serial_ - 1;
    retired_pools_.emplace_back(last, descriptor_pool_);
  }
  descriptor_pool_ = fresh;
  sets_.clear();
  ReclaimDescriptorPoolsLocked();
  return Status::Ok();
}

void VulkanDevice::ReclaimDescriptorPoolsLocked() {
  for (auto it = retired_pools_.begin(); it != retired_pools_.end();) {
    const uint64_t last = it->first;
    bool bound = false;
    for (int i = 0; i < kBatches; ++i) {
      const Batch& b = batches_[i];
      bound = bound || ((b.in_flight || i == open_) && b.serial <= last);
    }
    if (bound) {
      ++it;
      continue;
    }
    fn_.vkResetDescriptorPool(device_, it->second, 0);
    spare_pools_.push_back(it->second);
    it = retired_pools_.erase(it);
  }
}

// ---- staging and transfers --------------------------------------------------------

Status VulkanDevice::TakeStaging(std::unique_lock<std::mutex>& lock, uint64_t bytes, Batch** batch,
                                 uint64_t* offset) {
  const uint64_t rounded = (bytes + kStagingAlignment - 1) / kStagingAlignment * kStagingAlignment;
  while (true) {
    Result<Batch*> open = OpenLocked(lock);
    if (!open.ok()) return open.status();
    Batch& b = **open;
    if (b.staging_used + rounded <= b.staging.bytes) {
      *batch = &b;
      *offset = b.staging_used;
      b.staging_used += rounded;
      return Status::Ok();
    }
    if (b.staging_used == 0) {
      // Nothing of this batch is in its staging yet: a larger buffer for it.
      Status s = GrowStaging(b, rounded);
      if (!s.ok()) return s;
      continue;
    }
    // The rest of this batch's staging is too small: it goes, the next opens.
    Result<uint64_t> submitted = SubmitLocked();
    if (!submitted.ok()) return submitted.status();
  }
}

Status VulkanDevice::GrowStaging(Batch& batch, uint64_t bytes) {
  MemoryBlock& staging = batch.staging;
  if (staging.buffer != VK_NULL_HANDLE) {
    fn_.vkUnmapMemory(device_, staging.memory);
    fn_.vkDestroyBuffer(device_, staging.buffer, nullptr);
    fn_.vkFreeMemory(device_, staging.memory, nullptr);
    staging = {};
    batch.staging_mapped = nullptr;
  }
  Result<MemoryBlock> block =
      CreateBlock(std::max(bytes, kMinStagingBytes), VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                  static_cast<uint32_t>(staging_memory_type_), "staging");
  if (!block.ok()) return block.status();
  void* mapped = nullptr;
  Status s = VulkanStatus(fn_.vkMapMemory(device_, block->memory, 0, VK_WHOLE_SIZE, 0, &mapped), "mapping staging");
  if (!s.ok()) {
    fn_.vkDestroyBuffer(device_, block->buffer, nullptr);
    fn_.vkFreeMemory(device_, block->memory, nullptr);
    return s;
  }
  staging = *block;
  batch.staging_mapped = static_cast<uint8_t*>(mapped);
  return Status::Ok();
}

Status VulkanDevice::Upload(const void* data, uint64_t bytes, const BufferSpan& to) {
  if (bytes == 0) return Status::Ok();
  if (bytes > to.bytes) return InternalError("an upload larger than its destination");
  std::unique_lock lock(mutex_);
  Batch* batch = nullptr;
  uint64_t offset = 0;
  Status s = TakeStaging(lock, bytes, &batch, &offset);
  if (!s.ok()) return s;
  // This region belongs to the open batch alone, which has not been submitted.
  std::memcpy(batch->staging_mapped + offset, data, bytes);
  VkBufferCopy region{offset, to.offset, bytes};
  fn_.vkCmdCopyBuffer(batch->commands, batch->staging.buffer, to.buffer, 1, &region);
  FullBarrier(fn_, batch->commands);
  ++batch->commands_recorded;
  return Status::Ok();
}

Status VulkanDevice::Download(const BufferSpan& from, void* data, uint64_t bytes) {
  if (bytes == 0) return Status::Ok();
  if (t_recording != nullptr && t_recording->device_.get() == this) {
    return InternalError("a download while recording: the recorded work has not run");
  }
  if (bytes > from.bytes) return InternalError("a download larger than its source");
  std::unique_lock lock(mutex_);
  Batch* batch = nullptr;
  uint64_t offset = 0;
  Status s = TakeStaging(lock, bytes, &batch, &offset);
  if (!s.ok()) return s;
  VkBufferCopy region{from.offset, offset, bytes};
  fn_.vkCmdCopyBuffer(batch->commands, from.buffer, batch->staging.buffer, 1, &region);
  FullBarrier(fn_, batch->commands);  // the copy's writes visible to the host
  ++batch->commands_recorded;
  // Its staging stays this batch's until the copy below is done.
  ++batch->readers;
  Result<uint64_t> submitted = SubmitLocked();
  s = submitted.ok() ? WaitLocked(lock, *batch) : submitted.status();
  if (s.ok()) {
    lock.unlock();  // the copy out of staging need not hold up other threads
    std::memcpy(data, batch->staging_mapped + offset, bytes);
    lock.lock();
  }
  --batch->readers;
  batch_done_.notify_all();
  return s;
}

// ---- recordings ---------------------------------------------------------------

DeviceRecording::~DeviceRecording() {
  if (t_recording == this) t_recording = nullptr;  // abandoned while recording
  if (device_ && (commands_ != VK_NULL_HANDLE || !pools_.empty())) device_->Retire(commands_, std::move(pools_));
}

void VulkanDevice::Retire(VkCommandBuffer commands, std::vector<VkDescriptorPool> pools) {
  std::lock_guard lock(retired_mutex_);
  retired_.emplace_back(commands, std::move(pools));
}

void VulkanDevice::FreeRetiredLocked() {
  std::vector<std::pair<VkCommandBuffer, std::vector<VkDescriptorPool>>> retired;
  {
    std::lock_guard lock(retired_mutex_);
    retired.swap(retired_);
  }
  for (auto& [commands, pools] : retired) {
    if (commands != VK_NULL_HANDLE) fn_.vkFreeCommandBuffers(device_, command_pool_, 1, &commands);
    for (VkDescriptorPool pool : pools) fn_.vkDestroyDescriptorPool(device_, pool, nullptr);
  }
}

Result<std::shared_ptr<DeviceRecording>> VulkanDevice::BeginRecording() {
  if (t_recording != nullptr) return InternalError("this thread is recording already");
  std::shared_ptr<DeviceRecording> recording(new DeviceRecording(shared_from_this()));
  std::lock_guard lock(mutex_);
  if (!failed_.ok()) return failed_;
  VkCommandBufferAllocateInfo allocate{};
  allocate.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO;
  allocate.commandPool = command_pool_;
  allocate.level = VK_COMMAND_BUFFER_LEVEL_SECONDARY;
  allocate.commandBufferCount = 1;
  Status s = VulkanStatus(fn_.vkAllocateCommandBuffers(device_, &allocate, &recording->commands_),
                          "vkAllocateCommandBuffers (a recording)");
  if (!s.ok()) return s;
  VkCommandBufferInheritanceInfo inheritance{};
  inheritance.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_INHERITANCE_INFO;
  VkCommandBufferBeginInfo begin{};
  begin.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO;
  // One batch may execute it several times (tile batches of one shape).
  begin.flags = VK_COMMAND_BUFFER_USAGE_SIMULTANEOUS_USE_BIT;
  begin.pInheritanceInfo = &inheritance;
  s = VulkanStatus(fn_.vkBeginCommandBuffer(recording->commands_, &begin), "vkBeginCommandBuffer (a recording)");
  if (!s.ok()) return s;
  t_recording = recording.get();
  return recording;
}

Status VulkanDevice::EndRecording(DeviceRecording& recording) {
  if (t_recording != &recording || recording.device_.get() != this) {
    return InternalError("EndRecording of a recording this thread is not making");
  }
  t_recording = nullptr;
  std::lock_guard lock(mutex_);
  if (!failed_.ok()) return failed_;
  Status s = VulkanStatus(fn_.vkEndCommandBuffer(recording.commands_), "vkEndCommandBuffer (a recording)");
  if (s.ok()) recording.ended_ = true;
  return s;
}

Result<VkDescriptorSet> VulkanDevice::RecordingSetFor(DeviceRecording& recording, VkDescriptorSetLayout layout,
                                                      std::span<const BufferSpan> buffers) {
  if (recording.pools_.empty() || recording.sets_in_last_pool_ == kRecordingPoolSets) {
    Result<VkDescriptorPool> pool = NewDescriptorPool(kRecordingPoolSets);
    if (!pool.ok()) return pool.status();
    recording.pools_.push_back(*pool);
    recording.sets_in_last_pool_ = 0;
  }
  Result<VkDescriptorSet> set = WriteNewSet(recording.pools_.back(), layout, buffers);
  if (set.ok()) ++recording.sets_in_last_pool_;
  return set;
}

Status VulkanDevice::Replay(const std::shared_ptr<DeviceRecording>& recording, const BufferSpan& in,
                            const BufferSpan& in_to, const BufferSpan& out_from, const BufferSpan& out) {
  if (!recording || !recording->ended_ || recording->device_.get() != this) {
    return InternalError("a replay of a recording not finished on this device");
  }
  if (in.bytes != in_to.bytes || out_from.bytes != out.bytes) {
    return InternalError("a replay's input or output differs in size from the recorded one");
  }
  std::unique_lock lock(mutex_);
  Result<Batch*> batch = OpenLocked(lock);
  if (!batch.ok()) return batch.status();
  const VkCommandBuffer commands = (*batch)->commands;
  VkBufferCopy in_region{in.offset, in_to.offset, in.bytes};
  fn_.vkCmdCopyBuffer(commands, in.buffer, in_to.buffer, 1, &in_region);
  FullBarrier(fn_, commands);
  fn_.vkCmdExecuteCommands(commands, 1, &recording->commands_);  // ends with a barrier of its own
  VkBufferCopy out_region{out_from.offset, out.offset, out.bytes};
  fn_.vkCmdCopyBuffer(commands, out_from.buffer, out.buffer, 1, &out_region);
  FullBarrier(fn_, commands);
  (*batch)->commands_recorded += 3;
  (*batch)->recordings.push_back(recording);
  ++replays_;
  return Status::Ok();
}

}  // namespace tessera::engine::vulkan
