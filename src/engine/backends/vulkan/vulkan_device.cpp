#include "engine/backends/vulkan/vulkan_device.h"

#include "engine/backends/vulkan/vulkan_kernels.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <vector>

#include "util/log.h"

namespace tessera::engine::vulkan {
namespace {

constexpr VkBufferUsageFlags kBufferUsage =
    VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;

// A memory type among `bits` with every flag of `wanted`, or -1.
int FindMemoryType(const VkPhysicalDeviceMemoryProperties& memory, uint32_t bits, VkMemoryPropertyFlags wanted) {
  for (uint32_t i = 0; i < memory.memoryTypeCount; ++i) {
    if ((bits & (1u << i)) != 0 && (memory.memoryTypes[i].propertyFlags & wanted) == wanted) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace

uint64_t FreeDeviceBytes(const HeapReport& report) {
  if (report.has_budget) return report.budget_bytes > report.usage_bytes ? report.budget_bytes - report.usage_bytes : 0;
  return report.heap_bytes > report.held_bytes ? report.heap_bytes - report.held_bytes : 0;
}

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
  for (Batch& batch : batches_) {
    VkCommandBufferAllocateInfo allocate{};
    allocate.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO;
    allocate.commandPool = command_pool_;
    allocate.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    allocate.commandBufferCount = 1;
    s = VulkanStatus(fn_.vkAllocateCommandBuffers(device_, &allocate, &batch.commands),
                     name + ": vkAllocateCommandBuffers");
    if (!s.ok()) return s;
    VkFenceCreateInfo fence{};
    fence.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO;
    s = VulkanStatus(fn_.vkCreateFence(device_, &fence, nullptr, &batch.fence), name + ": vkCreateFence");
    if (!s.ok()) return s;
  }
  std::lock_guard lock(mutex_);
  return RetireDescriptorPoolLocked();  // none to retire yet: the first pool
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
  for (Batch& batch : batches_) {
    batch.recordings.clear();
    if (batch.staging.buffer != VK_NULL_HANDLE) {
      fn_.vkUnmapMemory(device_, batch.staging.memory);
      fn_.vkDestroyBuffer(device_, batch.staging.buffer, nullptr);
      fn_.vkFreeMemory(device_, batch.staging.memory, nullptr);
    }
    if (batch.fence != VK_NULL_HANDLE) fn_.vkDestroyFence(device_, batch.fence, nullptr);
  }
  if (descriptor_pool_ != VK_NULL_HANDLE) fn_.vkDestroyDescriptorPool(device_, descriptor_pool_, nullptr);
  for (const auto& [last, pool] : retired_pools_) fn_.vkDestroyDescriptorPool(device_, pool, nullptr);
  for (VkDescriptorPool pool : spare_pools_) fn_.vkDestroyDescriptorPool(device_, pool, nullptr);
  sets_.clear();
  FreeRetiredLocked();  // every recording is gone (each held the device)
  if (command_pool_ != VK_NULL_HANDLE) fn_.vkDestroyCommandPool(device_, command_pool_, nullptr);
  fn_.vkDestroyDevice(device_, nullptr);
}

Result<MemoryBlock> VulkanDevice::CreateBlock(uint64_t bytes, VkBufferUsageFlags usage, uint32_t memory_type,
                                              const std::string& what) {
  MemoryBlock block;
  VkBufferCreateInfo info{};
  info.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO;
  info.size = bytes;
  info.usage = usage;
  Status s = VulkanStatus(fn_.vkCreateBuffer(device_, &info, nullptr, &block.buffer), "vkCreateBuffer (" + what + ")");
  if (!s.ok()) return s;
  VkMemoryRequirements requirements{};
  fn_.vkGetBufferMemoryRequirements(device_, block.buffer, &requirements);
  VkMemoryAllocateInfo allocate{};
  allocate.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO;
  allocate.allocationSize = requirements.size;
  allocate.memoryTypeIndex = memory_type;
  s = VulkanStatus(fn_.vkAllocateMemory(device_, &allocate, nullptr, &block.memory),
                   "allocating " + std::to_string(requirements.size) + " bytes of " + what + " on vulkan:" +
                       std::to_string(index_));
  if (s.ok()) s = VulkanStatus(fn_.vkBindBufferMemory(device_, block.buffer, block.memory, 0), "vkBindBufferMemory");
  if (!s.ok()) {
    if (block.memory != VK_NULL_HANDLE) fn_.vkFreeMemory(device_, block.memory, nullptr);
    fn_.vkDestroyBuffer(device_, block.buffer, nullptr);
    return s;
  }
  block.bytes = requirements.size;
  return block;
}

Result<MemoryBlock> VulkanDevice::AllocateBlock(uint64_t bytes) {
  Result<MemoryBlock> block = CreateBlock(bytes, kBufferUsage, device_memory_type_, "device memory");
  if (block.ok()) held_bytes_ += block->bytes;
  return block;
}

void VulkanDevice::FreeBlock(const MemoryBlock& block) {
  if (block.buffer == VK_NULL_HANDLE) return;
  {
    // The open batch and those in flight may still use this memory (a range
    // freed and cached after its last dispatch was recorded): they run first.
    // A failure is kept in failed_ and returned by every later call. The kept
    // descriptor sets may name the buffer, whose handle a later buffer may
    // take: forgotten (their pool retired).
    std::unique_lock lock(mutex_);
    (void)FlushLocked(lock);
    (void)RetireDescriptorPoolLocked();
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


}  // namespace tessera::engine::vulkan
