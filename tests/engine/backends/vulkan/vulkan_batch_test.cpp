// How work reaches the device (vulkan_device.h): ops are recorded into one
// batch and submitted at a sync point — a download, memory given back to the
// driver, a full staging buffer — or by Submit, not one submission per op;
// dependent dispatches in one batch see each other's writes; batches in flight
// keep their own staging, several threads share the device, and a full pool
// of kept descriptor sets is retired, not reset under a pending batch; and the
// device's VkPipelineCache is kept on disk, read back, and a corrupt or foreign
// file is ignored.
#include <gtest/gtest.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "../../../support/server_process.h"
#include "engine/backends/vulkan/vulkan_backend.h"
#include "engine/backends/vulkan/vulkan_kernels.h"
#include "engine/backends/vulkan/vulkan_memory.h"
#include "util/file_io.h"
#include "vulkan_test_device.h"

namespace tessera::engine::vulkan {
namespace {

std::shared_ptr<VulkanBackend> TestBackend() {
  auto backend = VulkanBackend::Create(test::TestDeviceIndex(), {});
  EXPECT_TRUE(backend.ok()) << backend.status().ToString();
  return backend.ok() ? *backend : nullptr;
}

// `x += 1` in place over a span of `count` floats.
Status AddOne(VulkanBackend& backend, const BufferSpan& span, uint32_t count) {
  ElementwisePush push;
  push.total = count;
  push.op = 0;  // add
  push.operand = kOperandScalar;
  push.scalar = 1.f;
  const std::array<BufferSpan, 4> buffers{span, backend.Unused(), span, backend.Unused()};
  return backend.gpu().Run([&](CommandRecorder& r) {
    return r.Dispatch(backend.Shader(ShaderId::kElementwise), buffers, &push, sizeof(push), push.total);
  });
}

TEST(VulkanBatchTest, OpsAreSubmittedTogetherAtTheDownloadAndSeeEachOthersWrites) {
  auto backend = TestBackend();
  ASSERT_NE(backend, nullptr);
  VulkanDevice& device = backend->gpu();
  ASSERT_TRUE(device.Flush().ok());
  Tensor host;
  host.dims = 3, host.n = 1, host.c = 2, host.h = 3, host.w = 5;
  host.data.resize(30);
  std::iota(host.data.begin(), host.data.end(), 0.f);
  const uint64_t before = device.submissions();
  auto t = backend->FromHost(host);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(AddOne(*backend, SpanOf(*t), 30).ok());
  // The upload and five dispatches are recorded, none submitted yet.
  EXPECT_EQ(device.submissions(), before);
  auto back = backend->ToHost(*t);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(device.submissions(), before + 1);
  for (int i = 0; i < 30; ++i) EXPECT_EQ(back->data[i], static_cast<float>(i + 5)) << i;
}

TEST(VulkanBatchTest, MemoryGoesBackToTheDriverOnlyAfterTheBatchThatUsesItRan) {
  auto backend = TestBackend();
  ASSERT_NE(backend, nullptr);
  VulkanDevice& device = backend->gpu();
  ASSERT_TRUE(device.Flush().ok());
  auto shared = VulkanDevice::Open(test::TestDeviceIndex());
  ASSERT_TRUE(shared.ok());
  VulkanDeviceMemory memory(*shared);
  auto range = memory.Allocate(4096);
  ASSERT_TRUE(range.ok()) << range.status().ToString();
  const uint64_t before = device.submissions();
  ASSERT_TRUE(AddOne(*backend, static_cast<const VulkanRange*>(*range)->span, 1024).ok());
  EXPECT_EQ(device.submissions(), before);
  memory.Free(*range);  // the block's last range: vkFreeMemory, after the batch
  EXPECT_EQ(memory.block_count(), 0u);
  EXPECT_EQ(device.submissions(), before + 1);
}

// A descriptor set is written once per layout and bindings, and bound again
// by every later dispatch that names the same ranges, in this batch or a later
// one; memory given back to the driver forgets them (a new buffer may take
// the freed one's handle), and the next dispatch writes a fresh set.
TEST(VulkanBatchTest, DescriptorSetsAreWrittenOnceAndForgottenWithTheirMemory) {
  auto backend = TestBackend();
  ASSERT_NE(backend, nullptr);
  VulkanDevice& device = backend->gpu();
  auto shared = VulkanDevice::Open(test::TestDeviceIndex());
  ASSERT_TRUE(shared.ok());
  VulkanDeviceMemory memory(*shared);
  auto range = memory.Allocate(4096);
  ASSERT_TRUE(range.ok()) << range.status().ToString();
  const BufferSpan span = static_cast<const VulkanRange*>(*range)->span;
  std::vector<float> values(1024, 0.f);
  ASSERT_TRUE(device.Upload(values.data(), values.size() * sizeof(float), span).ok());
  const uint64_t written = device.descriptor_sets_written(), reused = device.descriptor_sets_reused();
  ASSERT_TRUE(AddOne(*backend, span, 1024).ok());
  ASSERT_TRUE(AddOne(*backend, span, 1024).ok());
  ASSERT_TRUE(device.Flush().ok());
  ASSERT_TRUE(AddOne(*backend, span, 1024).ok());  // a later batch
  EXPECT_EQ(device.descriptor_sets_written(), written + 1);
  EXPECT_EQ(device.descriptor_sets_reused(), reused + 2);
  ASSERT_TRUE(device.Download(span, values.data(), values.size() * sizeof(float)).ok());
  for (float v : values) EXPECT_EQ(v, 3.f);  // each of the three dispatches ran, in order
  // Give the memory back and take new memory: its set is written anew.
  memory.Free(*range);
  ASSERT_EQ(memory.block_count(), 0u);
  auto again = memory.Allocate(4096);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  const BufferSpan fresh = static_cast<const VulkanRange*>(*again)->span;
  std::vector<float> zeros(1024, 0.f);
  ASSERT_TRUE(device.Upload(zeros.data(), zeros.size() * sizeof(float), fresh).ok());
  ASSERT_TRUE(AddOne(*backend, fresh, 1024).ok());
  EXPECT_EQ(device.descriptor_sets_written(), written + 2);
  ASSERT_TRUE(device.Download(fresh, values.data(), values.size() * sizeof(float)).ok());
  for (float v : values) EXPECT_EQ(v, 1.f);
  memory.Free(*again);
}

TEST(VulkanBatchTest, UploadsLargerThanStagingTogetherArriveWhole) {
  auto backend = TestBackend();
  ASSERT_NE(backend, nullptr);
  // Three uploads of 3 MiB each in one batch: more than the 4 MiB staging
  // buffer holds at first, so the batch is flushed between them (or, where an
  // earlier test grew staging, they share it in separate regions).
  std::vector<Tensor> tensors;
  for (int k = 0; k < 3; ++k) {
    Tensor host;
    host.dims = 3, host.n = 1, host.c = 3, host.h = 512, host.w = 512;
    host.data.resize(3 * 512 * 512);
    for (size_t i = 0; i < host.data.size(); ++i) host.data[i] = static_cast<float>(k * 1000 + i % 997);
    auto t = backend->FromHost(std::move(host));
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    tensors.push_back(std::move(t).value());
  }
  for (int k = 0; k < 3; ++k) {
    auto back = backend->ToHost(tensors[k]);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    for (size_t i = 0; i < back->data.size(); i += 4099) {
      ASSERT_EQ(back->data[i], static_cast<float>(k * 1000 + i % 997)) << k << " " << i;
    }
  }
}

// Submit starts a batch without waiting; the next batches open in the other
// slot, then in the first again once its batch has run: each batch's uploads
// come from staging of its own, so none is overwritten before it was copied.
TEST(VulkanBatchTest, BatchesInFlightKeepTheirOwnStaging) {
  auto backend = TestBackend();
  ASSERT_NE(backend, nullptr);
  VulkanDevice& device = backend->gpu();
  ASSERT_TRUE(device.Flush().ok());
  constexpr int kBatchesSubmitted = 5, kCount = 4096;
  std::vector<Tensor> tensors;
  const uint64_t before = device.submissions();
  for (int k = 0; k < kBatchesSubmitted; ++k) {
    Tensor host;
    host.dims = 3, host.n = 1, host.c = 1, host.h = 1, host.w = kCount;
    host.data.resize(kCount);
    for (int i = 0; i < kCount; ++i) host.data[i] = static_cast<float>(k * 10000 + i);
    auto t = backend->FromHost(std::move(host));
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    ASSERT_TRUE(AddOne(*backend, SpanOf(*t), kCount).ok());
    ASSERT_TRUE(device.Submit().ok());
    EXPECT_EQ(device.submissions(), before + k + 1);
    tensors.push_back(std::move(t).value());
  }
  for (int k = 0; k < kBatchesSubmitted; ++k) {
    auto back = backend->ToHost(tensors[k]);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    for (int i = 0; i < kCount; i += 97) ASSERT_EQ(back->data[i], static_cast<float>(k * 10000 + i + 1)) << k << " " << i;
  }
}

// Threads record, submit and wait on one device at once: a thread waiting for
// its batch lets the others record theirs; every value is its own thread's.
TEST(VulkanBatchTest, SeveralThreadsShareTheDevice) {
  auto backend = TestBackend();
  ASSERT_NE(backend, nullptr);
  constexpr int kThreads = 3, kRounds = 15, kCount = 2048;
  std::vector<std::string> failures(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds && failures[t].empty(); ++round) {
        Tensor host;
        host.dims = 3, host.n = 1, host.c = 1, host.h = 1, host.w = kCount;
        host.data.resize(kCount);
        for (int i = 0; i < kCount; ++i) host.data[i] = static_cast<float>(t * 100000 + round * 1000 + i % 500);
        auto on_device = backend->FromHost(std::move(host));
        if (!on_device.ok()) {
          failures[t] = on_device.status().ToString();
          return;
        }
        for (int add = 0; add <= t; ++add) {
          Status s = AddOne(*backend, SpanOf(*on_device), kCount);
          if (!s.ok()) failures[t] = s.ToString();
        }
        if (round % 2 == 0) (void)backend->gpu().Submit();
        auto back = backend->ToHost(*on_device);
        if (!back.ok()) {
          failures[t] = back.status().ToString();
          return;
        }
        for (int i = 0; i < kCount; ++i) {
          const float expected = static_cast<float>(t * 100000 + round * 1000 + i % 500 + t + 1);
          if (back->data[i] != expected) {
            failures[t] = "thread " + std::to_string(t) + " round " + std::to_string(round) + " value " +
                          std::to_string(i) + ": " + std::to_string(back->data[i]);
            return;
          }
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], "") << "thread " << t;
}

// More distinct bindings than one pool of kept sets holds, in one open batch:
// the full pool is retired (its sets still bound by that batch) and a fresh
// one takes over; every dispatch ran on its own range.
TEST(VulkanBatchTest, AFullPoolOfKeptSetsIsRetiredNotResetUnderItsBatch) {
  auto backend = TestBackend();
  ASSERT_NE(backend, nullptr);
  VulkanDevice& device = backend->gpu();
  ASSERT_TRUE(device.Flush().ok());
  constexpr int kRanges = 1200;  // the pool keeps 1024
  const uint64_t stride = device.storage_alignment() / sizeof(float);
  auto t = backend->NewTensor(1, 1, 1, 1, static_cast<int>(kRanges * stride));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  std::vector<float> values(kRanges * stride, 0.f);
  const BufferSpan whole = SpanOf(*t);
  ASSERT_TRUE(device.Upload(values.data(), values.size() * sizeof(float), whole).ok());
  const uint64_t submissions = device.submissions(), written = device.descriptor_sets_written();
  for (int k = 0; k < kRanges; ++k) {
    // Range k gets k % 3 + 1 additions.
    const BufferSpan range{whole.buffer, whole.offset + k * stride * sizeof(float), stride * sizeof(float)};
    for (int add = 0; add <= k % 3; ++add) ASSERT_TRUE(AddOne(*backend, range, static_cast<uint32_t>(stride)).ok());
  }
  EXPECT_EQ(device.descriptor_sets_written(), written + kRanges);
  EXPECT_EQ(device.submissions(), submissions);  // no wait, no submission: the pool was swapped
  ASSERT_TRUE(device.Download(whole, values.data(), values.size() * sizeof(float)).ok());
  for (int k = 0; k < kRanges; ++k) {
    for (uint64_t i = 0; i < stride; i += 13) ASSERT_EQ(values[k * stride + i], static_cast<float>(k % 3 + 1)) << k;
  }
}

TEST(VulkanBatchTest, ThePipelineCacheIsWrittenReadBackAndABadFileIsIgnored) {
  auto backend = TestBackend();
  ASSERT_NE(backend, nullptr);
  VulkanDevice& device = backend->gpu();
  // At least one pipeline built before the directory is given.
  auto t = backend->NewTensor(3, 1, 1, 1, 4);
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE(AddOne(*backend, SpanOf(*t), 4).ok());
  ASSERT_TRUE(device.Flush().ok());

  tessera::test::TempDir first;
  const std::string name = PipelineCacheFileName(device.pipeline_cache_key());
  EXPECT_EQ(device.UsePipelineCacheDir(first.path()), 0u);  // no file yet: nothing read
  auto file = ReadFileBytes(first.path() + "/" + name);
  ASSERT_TRUE(file.ok()) << "the cache was not written: " << file.status().ToString();
  auto data = DecodePipelineCacheFile(*file, device.pipeline_cache_key());
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  ASSERT_GE(data->size(), 32u);  // Vulkan's header at least, with the device's UUID
  const auto key = device.pipeline_cache_key();
  EXPECT_TRUE(std::equal(key.uuid.begin(), key.uuid.end(), data->begin() + 16));

  // Another directory holding that file: its data goes to vkCreatePipelineCache.
  tessera::test::TempDir second;
  std::filesystem::copy_file(first.path() + "/" + name, second.path() + "/" + name);
  EXPECT_EQ(device.UsePipelineCacheDir(second.path()), data->size());
  EXPECT_EQ(device.UsePipelineCacheDir(second.path()), 0u);  // the directory in use: nothing again

  // A flipped byte of the driver's data: the checksum catches it, the file is ignored.
  tessera::test::TempDir corrupt;
  std::vector<uint8_t> bytes = *file;
  bytes.back() ^= 0x5a;
  ASSERT_TRUE(WriteFileAtomically(corrupt.path() + "/" + name, bytes).ok());
  EXPECT_EQ(device.UsePipelineCacheDir(corrupt.path()), 0u);
  // Another device's file under this device's name (a copy, a renamed file):
  // ignored too, even with a valid checksum.
  tessera::test::TempDir foreign;
  PipelineCacheKey other = key;
  other.uuid[0] ^= 0xff;
  std::vector<uint8_t> foreign_data(data->begin(), data->end());
  foreign_data[16] ^= 0xff;  // the driver's header names the other UUID as well
  ASSERT_TRUE(WriteFileAtomically(foreign.path() + "/" + name, EncodePipelineCacheFile(other, foreign_data)).ok());
  EXPECT_EQ(device.UsePipelineCacheDir(foreign.path()), 0u);
  EXPECT_FALSE(DecodePipelineCacheFile(EncodePipelineCacheFile(other, foreign_data), key).ok());
  EXPECT_FALSE(DecodePipelineCacheFile(std::span<const uint8_t>(file->data(), 40), key).ok());  // short
  // Whatever was read or refused, the device still builds and runs pipelines.
  ASSERT_TRUE(AddOne(*backend, SpanOf(*t), 4).ok());
  auto back = backend->ToHost(*t);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  device.UsePipelineCacheDir("");  // later tests' pipelines are not written to a removed directory
}

}  // namespace
}  // namespace tessera::engine::vulkan
