#include "engine/backends/vulkan/vulkan_device.h"

#include "engine/backends/vulkan/vulkan_kernels.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <vector>

#include "util/log.h"

namespace tessera::engine::vulkan {
namespace {

constexpr uint32_t kGroupSize = 64;     // every shader's local_size_x
constexpr uint32_t kMaxGroups = 65535;  // per dimension: the least every device allows
constexpr uint32_t kCachedSets = 1024;  // descriptor sets written and kept (DescriptorSetFor)
constexpr uint32_t kRecordingPoolSets = 64;  // per descriptor pool of a recording
constexpr uint32_t kMaxBindings = 6;    // the most any shader binds
constexpr uint64_t kMinStagingBytes = 4ull << 20;
constexpr uint64_t kStagingAlignment = 256;  // each transfer's region of staging starts on it
constexpr VkBufferUsageFlags kBufferUsage =
    VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;

// A memory type among `bits` with every flag of `wanted`, or -1.
int FindMemoryType(const VkPhysicalDeviceMemoryProperties& memory, uint32_t bits, VkMemoryPropertyFlags wanted) {
  for (uint32_t i = 0; i < memory.memoryTypeCount; ++i) {
    if ((bits & (1u << i)) != 0 && (memory.memoryTypes[i].propertyFlags & wanted) == wanted) return static_cast<int>(i);
  }
  return -1;
}

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

uint64_t FreeDeviceBytes(const HeapReport& report) {
  if (report.has_budget) return report.budget_bytes > report.usage_bytes ? report.budget_bytes - report.usage_bytes : 0;
  return report.heap_bytes > report.held_bytes ? report.heap_bytes - report.held_bytes : 0;
}

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

    // May flush the batch when its pool is used up: the commands go into the
    // batch open after it. A recording's sets come from its own pools.
    Result<VkDescriptorSet> set = recording_ != nullptr
                                      ? device_.RecordingSetFor(*recording_, (*pipeline)->set_layout, buffers)
                                      : device_.DescriptorSetFor((*pipeline)->set_layout, buffers);
    if (!set.ok()) return set.status();
    const VkCommandBuffer commands = recording_ != nullptr ? recording_->commands_ : device_.commands_;
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
      ++device_.batch_commands_;
    }
    return Status::Ok();
  }

 private:
  VulkanDevice& device_;
  DeviceRecording* recording_;
};

// ---- the device ---------------------------------------------------------------

Result<std::shared_ptr<VulkanDevice>> VulkanDevice::Open(int index) {
  const VulkanAvailability& available = Availability();
  if (available.system == nullptr || available.system->devices.empty()) {
    return Status(StatusCode::kDeviceUnavailable, available.reason);
  }
  const VulkanSystem& system = *available.system;
  if (index < 0 || index >= static_cast<int>(system.devices.size())) {
    return Status(StatusCode::kDeviceUnavailable,
                  "this machine has " + std::to_string(system.devices.size()) + " Vulkan device(s)");
  }
  if (system.devices[index].compute_queue_family < 0) {
    return Status(StatusCode::kDeviceUnavailable, system.devices[index].name + " has no compute queue");
  }
  static std::mutex open_mutex;
  static std::map<int, std::weak_ptr<VulkanDevice>> open;
  std::lock_guard lock(open_mutex);
  if (std::shared_ptr<VulkanDevice> existing = open[index].lock()) return existing;
  std::shared_ptr<VulkanDevice> device(new VulkanDevice(index, system.fn, system.devices[index]));
  Status s = device->Init();
  if (!s.ok()) return s;
  open[index] = device;
  return device;
}

VulkanDevice::VulkanDevice(int index, const VulkanFunctions& fn, const VulkanPhysicalDevice& physical)
    : index_(index), fn_(fn), physical_(physical) {}

Status VulkanDevice::Init() {
  const float priority = 1.f;
  VkDeviceQueueCreateInfo queue{};
  queue.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO;
  queue.queueFamilyIndex = static_cast<uint32_t>(physical_.compute_queue_family);
  queue.queueCount = 1;
  queue.pQueuePriorities = &priority;
  VkDeviceCreateInfo info{};
  info.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO;
  info.queueCreateInfoCount = 1;
  info.pQueueCreateInfos = &queue;
  // fp16 activations need 16-bit storage enabled (the _fp16 shader variants).
  VkPhysicalDevice16BitStorageFeatures storage{};
  storage.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES;
  storage.storageBuffer16BitAccess = VK_TRUE;
  if (physical_.storage_16bit) info.pNext = &storage;
  const std::string name = "vulkan:" + std::to_string(index_);
  Status s = VulkanStatus(fn_.vkCreateDevice(physical_.handle, &info, nullptr, &device_), name + ": vkCreateDevice");
  if (!s.ok()) return s;
  fn_.vkGetDeviceQueue(device_, queue.queueFamilyIndex, 0, &queue_);

  VkPhysicalDeviceProperties properties{};
  fn_.vkGetPhysicalDeviceProperties(physical_.handle, &properties);
  storage_alignment_ = std::max<VkDeviceSize>(256, properties.limits.minStorageBufferOffsetAlignment);
  max_storage_range_ = properties.limits.maxStorageBufferRange;
  pipeline_cache_key_.vendor_id = properties.vendorID;
  pipeline_cache_key_.device_id = properties.deviceID;
  pipeline_cache_key_.driver_version = properties.driverVersion;
  std::memcpy(pipeline_cache_key_.uuid.data(), properties.pipelineCacheUUID, pipeline_cache_key_.uuid.size());
  // Empty until a directory is given (UsePipelineCacheDir): every pipeline is
  // built through it, so what was built is there to save.
  VkPipelineCacheCreateInfo cache_info{};
  cache_info.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO;
  s = VulkanStatus(fn_.vkCreatePipelineCache(device_, &cache_info, nullptr, &pipeline_cache_),
                   name + ": vkCreatePipelineCache");
  if (!s.ok()) return s;

  // Which memory types a storage buffer may live in: device-local for tensors,
  // host-visible and coherent for staging (on llvmpipe and integrated GPUs
  // these are the same memory).
  VkBufferCreateInfo probe_info{};
  probe_info.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO;
  probe_info.size = 4096;
  probe_info.usage = kBufferUsage;
  VkBuffer probe = VK_NULL_HANDLE;
  s = VulkanStatus(fn_.vkCreateBuffer(device_, &probe_info, nullptr, &probe), name + ": vkCreateBuffer");
  if (!s.ok()) return s;
  VkMemoryRequirements requirements{};
  fn_.vkGetBufferMemoryRequirements(device_, probe, &requirements);
  fn_.vkDestroyBuffer(device_, probe, nullptr);
  VkPhysicalDeviceMemoryProperties memory{};
  fn_.vkGetPhysicalDeviceMemoryProperties(physical_.handle, &memory);
  int device_type = FindMemoryType(memory, requirements.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
  if (device_type < 0) device_type = FindMemoryType(memory, requirements.memoryTypeBits, 0);
  staging_memory_type_ = FindMemoryType(memory, requirements.memoryTypeBits,
                                        VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
  if (device_type < 0 || staging_memory_type_ < 0) {
    return Status(StatusCode::kDeviceUnavailable, name + ": no memory type for storage buffers and staging");
  }
  device_memory_type_ = static_cast<uint32_t>(device_type);
  device_heap_ = static_cast<int>(memory.memoryTypes[device_type].heapIndex);

  VkCommandPoolCreateInfo pool{};
  pool.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO;
  pool.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
  pool.queueFamilyIndex = queue.queueFamilyIndex;
  s = VulkanStatus(fn_.vkCreateCommandPool(device_, &pool, nullptr, &command_pool_), name + ": vkCreateCommandPool");
  if (!s.ok()) return s;
  VkCommandBufferAllocateInfo allocate{};
  allocate.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO;
  allocate.commandPool = command_pool_;
  allocate.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  allocate.commandBufferCount = 1;
  s = VulkanStatus(fn_.vkAllocateCommandBuffers(device_, &allocate, &commands_), name + ": vkAllocateCommandBuffers");
  if (!s.ok()) return s;
  VkFenceCreateInfo fence{};
  fence.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO;
  s = VulkanStatus(fn_.vkCreateFence(device_, &fence, nullptr, &fence_), name + ": vkCreateFence");
  if (!s.ok()) return s;
  VkDescriptorPoolSize sizes{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, kCachedSets * kMaxBindings};
  VkDescriptorPoolCreateInfo descriptors{};
  descriptors.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO;
  descriptors.maxSets = kCachedSets;
  descriptors.poolSizeCount = 1;
  descriptors.pPoolSizes = &sizes;
  return VulkanStatus(fn_.vkCreateDescriptorPool(device_, &descriptors, nullptr, &descriptor_pool_),
                      name + ": vkCreateDescriptorPool");
}

VulkanDevice::~VulkanDevice() {
  if (device_ == VK_NULL_HANDLE) return;
  fn_.vkDeviceWaitIdle(device_);
  for (Pipeline& p : pipelines_) {
    if (p.pipeline != VK_NULL_HANDLE) fn_.vkDestroyPipeline(device_, p.pipeline, nullptr);
    if (p.layout != VK_NULL_HANDLE) fn_.vkDestroyPipelineLayout(device_, p.layout, nullptr);
    if (p.set_layout != VK_NULL_HANDLE) fn_.vkDestroyDescriptorSetLayout(device_, p.set_layout, nullptr);
  }
  if (pipeline_cache_ != VK_NULL_HANDLE) fn_.vkDestroyPipelineCache(device_, pipeline_cache_, nullptr);
  if (staging_.buffer != VK_NULL_HANDLE) {
    fn_.vkUnmapMemory(device_, staging_.memory);
    fn_.vkDestroyBuffer(device_, staging_.buffer, nullptr);
    fn_.vkFreeMemory(device_, staging_.memory, nullptr);
  }
  if (descriptor_pool_ != VK_NULL_HANDLE) fn_.vkDestroyDescriptorPool(device_, descriptor_pool_, nullptr);
  sets_.clear();
  FreeRetiredLocked();  // every recording is gone (each held the device)
  if (fence_ != VK_NULL_HANDLE) fn_.vkDestroyFence(device_, fence_, nullptr);
  if (command_pool_ != VK_NULL_HANDLE) fn_.vkDestroyCommandPool(device_, command_pool_, nullptr);
  fn_.vkDestroyDevice(device_, nullptr);
}

Result<MemoryBlock> VulkanDevice::AllocateBlock(uint64_t bytes) {
  MemoryBlock block;
  VkBufferCreateInfo info{};
  info.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO;
  info.size = bytes;
  info.usage = kBufferUsage;
  Status s = VulkanStatus(fn_.vkCreateBuffer(device_, &info, nullptr, &block.buffer), "vkCreateBuffer");
  if (!s.ok()) return s;
  VkMemoryRequirements requirements{};
  fn_.vkGetBufferMemoryRequirements(device_, block.buffer, &requirements);
  VkMemoryAllocateInfo allocate{};
  allocate.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO;
  allocate.allocationSize = requirements.size;
  allocate.memoryTypeIndex = device_memory_type_;
  s = VulkanStatus(fn_.vkAllocateMemory(device_, &allocate, nullptr, &block.memory),
                   "allocating " + std::to_string(requirements.size) + " bytes on vulkan:" + std::to_string(index_));
  if (s.ok()) s = VulkanStatus(fn_.vkBindBufferMemory(device_, block.buffer, block.memory, 0), "vkBindBufferMemory");
  if (!s.ok()) {
    if (block.memory != VK_NULL_HANDLE) fn_.vkFreeMemory(device_, block.memory, nullptr);
    fn_.vkDestroyBuffer(device_, block.buffer, nullptr);
    return s;
  }
  block.bytes = requirements.size;
  held_bytes_ += requirements.size;
  return block;
}

void VulkanDevice::FreeBlock(const MemoryBlock& block) {
  if (block.buffer == VK_NULL_HANDLE) return;
  {
    // The open batch may still use this memory (a range freed and cached
    // after its last dispatch was recorded): run it first. A failure is kept
    // in failed_ and returned by every later call. The kept descriptor sets
    // may name the buffer, whose handle a later buffer may take: forget them.
    std::lock_guard lock(mutex_);
    (void)FlushLocked();
    ForgetDescriptorSetsLocked();
  }
  fn_.vkDestroyBuffer(device_, block.buffer, nullptr);
  fn_.vkFreeMemory(device_, block.memory, nullptr);
  held_bytes_ -= block.bytes;
}

HeapReport VulkanDevice::MemoryReport() const {
  HeapReport report;
  report.heap_bytes = physical_.heaps.at(device_heap_).size;
  report.held_bytes = held_bytes_.load();
  if (physical_.memory_budget) {
    VkPhysicalDeviceMemoryBudgetPropertiesEXT budget{};
    budget.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT;
    VkPhysicalDeviceMemoryProperties2 properties{};
    properties.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2;
    properties.pNext = &budget;
    fn_.vkGetPhysicalDeviceMemoryProperties2(physical_.handle, &properties);
    report.has_budget = true;
    report.budget_bytes = budget.heapBudget[device_heap_];
    report.usage_bytes = budget.heapUsage[device_heap_];
  }
  return report;
}

Result<const VulkanDevice::Pipeline*> VulkanDevice::PipelineFor(ShaderRef ref) {
  if (ref.fp16 && !physical_.storage_16bit) {
    return Status(StatusCode::kUnsupported, "vulkan:" + std::to_string(index_) + " has no 16-bit storage");
  }
  Pipeline& p = pipelines_[ref.index()];
  if (p.pipeline != VK_NULL_HANDLE) return &p;
  const std::span<const SpirvShader> shaders = EmbeddedShaders();
  if (ref.index() >= shaders.size()) return InternalError("shader missing from the build");
  const SpirvShader& shader = shaders[ref.index()];
  const ShaderInterface interface = InterfaceOf(ref.id);
  const std::string what = std::string("pipeline of shader ") + shader.name;

  VkDescriptorSetLayoutBinding bindings[kMaxBindings];
  for (int i = 0; i < interface.buffers; ++i) {
    bindings[i] = {};
    bindings[i].binding = static_cast<uint32_t>(i);
    bindings[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    bindings[i].descriptorCount = 1;
    bindings[i].stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
  }
  VkDescriptorSetLayoutCreateInfo set_info{};
  set_info.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO;
  set_info.bindingCount = static_cast<uint32_t>(interface.buffers);
  set_info.pBindings = bindings;
  Status s = VulkanStatus(fn_.vkCreateDescriptorSetLayout(device_, &set_info, nullptr, &p.set_layout), what);
  if (!s.ok()) return s;
  VkPushConstantRange push{VK_SHADER_STAGE_COMPUTE_BIT, 0, interface.push_bytes};
  VkPipelineLayoutCreateInfo layout_info{};
  layout_info.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO;
  layout_info.setLayoutCount = 1;
  layout_info.pSetLayouts = &p.set_layout;
  layout_info.pushConstantRangeCount = 1;
  layout_info.pPushConstantRanges = &push;
  s = VulkanStatus(fn_.vkCreatePipelineLayout(device_, &layout_info, nullptr, &p.layout), what);
  if (!s.ok()) return s;
  VkShaderModuleCreateInfo module_info{};
  module_info.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO;
  module_info.codeSize = shader.word_count * sizeof(uint32_t);
  module_info.pCode = shader.words;
  VkShaderModule module = VK_NULL_HANDLE;
  s = VulkanStatus(fn_.vkCreateShaderModule(device_, &module_info, nullptr, &module), what);
  if (!s.ok()) return s;
  VkComputePipelineCreateInfo pipeline_info{};
  pipeline_info.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO;
  pipeline_info.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
  pipeline_info.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
  pipeline_info.stage.module = module;
  pipeline_info.stage.pName = "main";
  pipeline_info.layout = p.layout;
  s = VulkanStatus(
      fn_.vkCreateComputePipelines(device_, pipeline_cache_, 1, &pipeline_info, nullptr, &p.pipeline), what);
  fn_.vkDestroyShaderModule(device_, module, nullptr);
  if (!s.ok()) {
    p.pipeline = VK_NULL_HANDLE;
    return s;
  }
  // At most once per shader and process: a few small atomic writes.
  SavePipelineCacheLocked();
  return &p;
}

// ---- the pipeline cache on disk -------------------------------------------------

uint64_t VulkanDevice::UsePipelineCacheDir(const std::string& dir) {
  std::lock_guard lock(mutex_);
  if (dir == pipeline_cache_dir_) return 0;
  pipeline_cache_dir_ = dir;
  pipeline_cache_on_disk_.clear();
  if (dir.empty()) return 0;
  const std::string path = dir + "/" + PipelineCacheFileName(pipeline_cache_key_);
  const std::vector<uint8_t> data = ReadPipelineCacheFile(path, pipeline_cache_key_);
  uint64_t loaded = 0;
  if (!data.empty()) {
    // The file's pipelines into the device's cache (which may hold some
    // already): a cache made from the data, merged, destroyed.
    VkPipelineCacheCreateInfo info{};
    info.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO;
    info.initialDataSize = data.size();
    info.pInitialData = data.data();
    VkPipelineCache from_file = VK_NULL_HANDLE;
    Status s = VulkanStatus(fn_.vkCreatePipelineCache(device_, &info, nullptr, &from_file), "vkCreatePipelineCache");
    if (s.ok()) {
      s = VulkanStatus(fn_.vkMergePipelineCaches(device_, pipeline_cache_, 1, &from_file), "vkMergePipelineCaches");
      fn_.vkDestroyPipelineCache(device_, from_file, nullptr);
    }
    if (s.ok()) {
      loaded = data.size();
      pipeline_cache_on_disk_ = data;
    } else {
      LogWarn("vulkan_pipeline_cache").Field("status", "ignored").Field("path", path).Field("reason", s.message());
    }
  }
  bool built = false;
  for (const Pipeline& p : pipelines_) built = built || p.pipeline != VK_NULL_HANDLE;
  if (built) SavePipelineCacheLocked();
  return loaded;
}

void VulkanDevice::SavePipelineCacheLocked() {
  if (pipeline_cache_dir_.empty()) return;
  const std::string path = pipeline_cache_dir_ + "/" + PipelineCacheFileName(pipeline_cache_key_);
  size_t size = 0;
  Status s = VulkanStatus(fn_.vkGetPipelineCacheData(device_, pipeline_cache_, &size, nullptr), "vkGetPipelineCacheData");
  std::vector<uint8_t> data(size);
  // VK_INCOMPLETE (the cache grew in between) cannot happen: mutex_ is held.
  if (s.ok() && size > 0) {
    s = VulkanStatus(fn_.vkGetPipelineCacheData(device_, pipeline_cache_, &size, data.data()),
                     "vkGetPipelineCacheData");
  }
  if (s.ok()) {
    data.resize(size);
    // What the file holds already (read at UsePipelineCacheDir or written
    // last): no write. A driver that caches nothing (llvmpipe) writes once.
    if (data == pipeline_cache_on_disk_) return;
    s = WritePipelineCacheFile(path, pipeline_cache_key_, data);
    if (s.ok()) pipeline_cache_on_disk_ = std::move(data);
  }
  if (!s.ok()) {
    LogWarn("vulkan_pipeline_cache").Field("status", "write_failed").Field("path", path).Field("error", s.message());
  }
}

// ---- batches ------------------------------------------------------------------

Status VulkanDevice::BeginLocked() {
  if (!failed_.ok()) return failed_;
  if (recording_) return Status::Ok();
  FreeRetiredLocked();  // no batch is pending: none executes them
  Status s = VulkanStatus(fn_.vkResetCommandBuffer(commands_, 0), "vkResetCommandBuffer");
  VkCommandBufferBeginInfo begin{};
  begin.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO;
  begin.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
  if (s.ok()) s = VulkanStatus(fn_.vkBeginCommandBuffer(commands_, &begin), "vkBeginCommandBuffer");
  if (!s.ok()) {
    failed_ = s;
    return s;
  }
  // What earlier batches wrote is visible to this one (and host writes to staging).
  FullBarrier(fn_, commands_);
  recording_ = true;
  batch_commands_ = 0;
  batch_staging_ = 0;
  return Status::Ok();
}

Status VulkanDevice::FlushLocked() {
  if (!failed_.ok()) return failed_;
  if (!recording_) return Status::Ok();
  recording_ = false;
  const bool empty = batch_commands_ == 0;
  batch_commands_ = 0;
  batch_staging_ = 0;
  const std::string where = "vulkan:" + std::to_string(index_);
  Status s = VulkanStatus(fn_.vkEndCommandBuffer(commands_), "vkEndCommandBuffer on " + where);
  if (s.ok() && !empty) {
    VkSubmitInfo submit{};
    submit.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO;
    submit.commandBufferCount = 1;
    submit.pCommandBuffers = &commands_;
    s = VulkanStatus(fn_.vkQueueSubmit(queue_, 1, &submit, fence_), "vkQueueSubmit on " + where);
    if (s.ok()) {
      s = VulkanStatus(fn_.vkWaitForFences(device_, 1, &fence_, VK_TRUE, UINT64_MAX), "running work on " + where);
      Status reset = VulkanStatus(fn_.vkResetFences(device_, 1, &fence_), "vkResetFences");
      if (s.ok()) s = reset;
      ++submissions_;
    }
  }
  // Done (or failed for good: a failed device frees nothing before its end).
  batch_recordings_.clear();
  if (!s.ok()) failed_ = s;
  return s;
}

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
  Status s = Status::Ok();
  if (sets_.size() >= kCachedSets) {
    // The pool is full: once the open batch (which may bind any of them) is
    // done, every set is free to go.
    s = FlushLocked();
    if (s.ok()) ForgetDescriptorSetsLocked();
  }
  if (s.ok()) s = BeginLocked();
  if (!s.ok()) return s;
  VkDescriptorSetAllocateInfo allocate{};
  allocate.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO;
  allocate.descriptorPool = descriptor_pool_;
  allocate.descriptorSetCount = 1;
  allocate.pSetLayouts = &layout;
  VkDescriptorSet set = VK_NULL_HANDLE;
  s = VulkanStatus(fn_.vkAllocateDescriptorSets(device_, &allocate, &set), "vkAllocateDescriptorSets");
  if (!s.ok()) return s;
  // Written once, never again: a set a pending batch binds is never updated.
  WriteSet(set, buffers);
  sets_.emplace(std::move(key), set);
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

void VulkanDevice::ForgetDescriptorSetsLocked() {
  if (sets_.empty()) return;
  // Only after a sync point: no batch binds them any more.
  fn_.vkResetDescriptorPool(device_, descriptor_pool_, 0);
  sets_.clear();
}

Status VulkanDevice::Run(const std::function<Status(CommandRecorder&)>& record) {
  std::lock_guard lock(mutex_);
  if (t_recording != nullptr && t_recording->device_.get() == this) {
    if (!failed_.ok()) return failed_;
    Recorder recorder(*this, t_recording);
    return record(recorder);
  }
  Status s = BeginLocked();
  if (!s.ok()) return s;
  Recorder recorder(*this, nullptr);
  return record(recorder);
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
    VkDescriptorPoolSize sizes{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, kRecordingPoolSets * kMaxBindings};
    VkDescriptorPoolCreateInfo info{};
    info.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO;
    info.maxSets = kRecordingPoolSets;
    info.poolSizeCount = 1;
    info.pPoolSizes = &sizes;
    VkDescriptorPool pool = VK_NULL_HANDLE;
    Status s = VulkanStatus(fn_.vkCreateDescriptorPool(device_, &info, nullptr, &pool), "vkCreateDescriptorPool");
    if (!s.ok()) return s;
    recording.pools_.push_back(pool);
    recording.sets_in_last_pool_ = 0;
  }
  VkDescriptorSetAllocateInfo allocate{};
  allocate.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO;
  allocate.descriptorPool = recording.pools_.back();
  allocate.descriptorSetCount = 1;
  allocate.pSetLayouts = &layout;
  VkDescriptorSet set = VK_NULL_HANDLE;
  Status s = VulkanStatus(fn_.vkAllocateDescriptorSets(device_, &allocate, &set), "vkAllocateDescriptorSets");
  if (!s.ok()) return s;
  ++recording.sets_in_last_pool_;
  WriteSet(set, buffers);
  ++descriptor_sets_written_;
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
  std::lock_guard lock(mutex_);
  Status s = BeginLocked();
  if (!s.ok()) return s;
  VkBufferCopy in_region{in.offset, in_to.offset, in.bytes};
  fn_.vkCmdCopyBuffer(commands_, in.buffer, in_to.buffer, 1, &in_region);
  FullBarrier(fn_, commands_);
  fn_.vkCmdExecuteCommands(commands_, 1, &recording->commands_);  // ends with a barrier of its own
  VkBufferCopy out_region{out_from.offset, out.offset, out.bytes};
  fn_.vkCmdCopyBuffer(commands_, out_from.buffer, out.buffer, 1, &out_region);
  FullBarrier(fn_, commands_);
  batch_commands_ += 3;
  batch_recordings_.push_back(recording);
  ++replays_;
  return Status::Ok();
}

Status VulkanDevice::Flush() {
  std::lock_guard lock(mutex_);
  return FlushLocked();
}

Status VulkanDevice::TakeStaging(uint64_t bytes, uint64_t* offset) {
  const uint64_t rounded = (bytes + kStagingAlignment - 1) / kStagingAlignment * kStagingAlignment;
  Status s = Status::Ok();
  if (batch_staging_ + rounded > staging_.bytes) {
    // The open batch has used the rest (or the buffer is too small): once
    // that batch is done, all of staging is free again.
    s = FlushLocked();
    if (s.ok() && rounded > staging_.bytes) s = GrowStaging(rounded);
  }
  if (s.ok()) s = BeginLocked();
  if (!s.ok()) return s;
  *offset = batch_staging_;
  batch_staging_ += rounded;
  return Status::Ok();
}

Status VulkanDevice::GrowStaging(uint64_t bytes) {
  if (staging_.buffer != VK_NULL_HANDLE) {
    fn_.vkUnmapMemory(device_, staging_.memory);
    fn_.vkDestroyBuffer(device_, staging_.buffer, nullptr);
    fn_.vkFreeMemory(device_, staging_.memory, nullptr);
    staging_ = {};
    staging_mapped_ = nullptr;
  }
  const uint64_t size = std::max(bytes, kMinStagingBytes);
  VkBufferCreateInfo info{};
  info.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO;
  info.size = size;
  info.usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
  Status s = VulkanStatus(fn_.vkCreateBuffer(device_, &info, nullptr, &staging_.buffer), "staging buffer");
  if (!s.ok()) return s;
  VkMemoryRequirements requirements{};
  fn_.vkGetBufferMemoryRequirements(device_, staging_.buffer, &requirements);
  VkMemoryAllocateInfo allocate{};
  allocate.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO;
  allocate.allocationSize = requirements.size;
  allocate.memoryTypeIndex = static_cast<uint32_t>(staging_memory_type_);
  s = VulkanStatus(fn_.vkAllocateMemory(device_, &allocate, nullptr, &staging_.memory), "staging memory");
  if (s.ok()) s = VulkanStatus(fn_.vkBindBufferMemory(device_, staging_.buffer, staging_.memory, 0), "staging memory");
  if (s.ok())
    s = VulkanStatus(fn_.vkMapMemory(device_, staging_.memory, 0, VK_WHOLE_SIZE, 0, &staging_mapped_),
                     "mapping staging");
  if (!s.ok()) {
    if (staging_.memory != VK_NULL_HANDLE) fn_.vkFreeMemory(device_, staging_.memory, nullptr);
    fn_.vkDestroyBuffer(device_, staging_.buffer, nullptr);
    staging_ = {};
    staging_mapped_ = nullptr;
    return s;
  }
  staging_.bytes = size;
  return Status::Ok();
}

Status VulkanDevice::Upload(const void* data, uint64_t bytes, const BufferSpan& to) {
  if (bytes == 0) return Status::Ok();
  if (bytes > to.bytes) return InternalError("an upload larger than its destination");
  std::lock_guard lock(mutex_);
  uint64_t offset = 0;
  Status s = TakeStaging(bytes, &offset);
  if (!s.ok()) return s;
  // This region belongs to the open batch alone, which has not been submitted.
  std::memcpy(static_cast<uint8_t*>(staging_mapped_) + offset, data, bytes);
  VkBufferCopy region{offset, to.offset, bytes};
  fn_.vkCmdCopyBuffer(commands_, staging_.buffer, to.buffer, 1, &region);
  FullBarrier(fn_, commands_);
  ++batch_commands_;
  return Status::Ok();
}

Status VulkanDevice::Download(const BufferSpan& from, void* data, uint64_t bytes) {
  if (bytes == 0) return Status::Ok();
  if (t_recording != nullptr && t_recording->device_.get() == this) {
    return InternalError("a download while recording: the recorded work has not run");
  }
  if (bytes > from.bytes) return InternalError("a download larger than its source");
  std::lock_guard lock(mutex_);
  uint64_t offset = 0;
  Status s = TakeStaging(bytes, &offset);
  if (!s.ok()) return s;
  VkBufferCopy region{from.offset, offset, bytes};
  fn_.vkCmdCopyBuffer(commands_, from.buffer, staging_.buffer, 1, &region);
  FullBarrier(fn_, commands_);  // the copy's writes visible to the host
  ++batch_commands_;
  s = FlushLocked();
  if (!s.ok()) return s;
  std::memcpy(data, static_cast<const uint8_t*>(staging_mapped_) + offset, bytes);
  return Status::Ok();
}

}  // namespace tessera::engine::vulkan
