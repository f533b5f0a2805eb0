#include "jobs/lane_discovery.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace tessera::jobs {
namespace {

// What `nvidia-smi -L` prints on a two-GPU machine.
constexpr const char* kTwoH100s =
    "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-3f1a2b4c-5d6e-7f80-91a2-b3c4d5e6f708)\n"
    "GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d)\n";

// The lanes as (name, gpu_id) pairs, so a mismatch prints readably.
std::vector<std::pair<std::string, int>> Describe(const std::vector<LaneSpec>& lanes) {
  std::vector<std::pair<std::string, int>> out;
  for (const auto& lane : lanes) out.emplace_back(lane.name, lane.gpu_id);
  return out;
}

std::vector<std::pair<std::string, int>> Gpus(std::initializer_list<int> ids) {
  std::vector<std::pair<std::string, int>> out;
  for (int id : ids) out.emplace_back("cuda:" + std::to_string(id), id);
  return out;
}

std::vector<std::pair<std::string, int>> Cpus(int count) {
  std::vector<std::pair<std::string, int>> out;
  for (int i = 0; i < count; ++i) out.emplace_back("cpu:" + std::to_string(i), -1);
  return out;
}

std::vector<std::pair<std::string, int>> Discover(const LaneSources& sources) {
  auto lanes = DiscoverLanes(sources);
  EXPECT_TRUE(lanes.ok()) << lanes.status().ToString();
  return lanes.ok() ? Describe(*lanes) : std::vector<std::pair<std::string, int>>{};
}

LaneSources GpuIds(std::string value) {
  LaneSources sources;
  sources.gpu_ids = std::move(value);
  return sources;
}

LaneSources VisibleDevices(std::string value, std::optional<std::string> smi = std::nullopt) {
  LaneSources sources;
  sources.nvidia_visible_devices = std::move(value);
  sources.nvidia_smi_list = std::move(smi);
  return sources;
}

// --- GPU_IDS ---

TEST(LaneDiscoveryTest, GpuIdsGiveOneLanePerGpu) { EXPECT_EQ(Discover(GpuIds("0,1")), Gpus({0, 1})); }

TEST(LaneDiscoveryTest, GpuIdsToleratesSpacesAndKeepsTheGivenNumbersAndOrder) {
  EXPECT_EQ(Discover(GpuIds(" 2 , 3 ")), Gpus({2, 3}));
  EXPECT_EQ(Discover(GpuIds("3,0")), Gpus({3, 0}));
  EXPECT_EQ(Discover(GpuIds("5")), Gpus({5}));
}

TEST(LaneDiscoveryTest, MalformedGpuIdsAreRefusedNamingTheVariable) {
  for (const char* bad : {"0,x", "x", "-1", "0,-1", "1.5", "0,", ",1", "0,,1", "0 1"}) {
    auto lanes = DiscoverLanes(GpuIds(bad));
    ASSERT_FALSE(lanes.ok()) << "GPU_IDS=\"" << bad << "\" was accepted";
    EXPECT_EQ(lanes.status().code(), StatusCode::kInvalid) << bad;
    EXPECT_NE(lanes.status().message().find("GPU_IDS"), std::string::npos) << lanes.status().message();
  }
}

TEST(LaneDiscoveryTest, DuplicateGpuIdsAreRefused) {
  auto lanes = DiscoverLanes(GpuIds("1,1"));
  ASSERT_FALSE(lanes.ok());
  EXPECT_EQ(lanes.status().code(), StatusCode::kInvalid);
  EXPECT_NE(lanes.status().message().find("GPU_IDS"), std::string::npos) << lanes.status().message();
  EXPECT_FALSE(DiscoverLanes(GpuIds("0, 1, 0")).ok());
}

TEST(LaneDiscoveryTest, MalformedGpuIdsDoNotFallBackToOtherSources) {
  LaneSources sources = GpuIds("0,x");
  sources.nvidia_visible_devices = "0";
  sources.nvidia_smi_list = kTwoH100s;
  EXPECT_FALSE(DiscoverLanes(sources).ok());
}

TEST(LaneDiscoveryTest, EmptyGpuIdsCountAsUnset) {
  LaneSources sources = GpuIds("");
  sources.nvidia_smi_list = kTwoH100s;
  EXPECT_EQ(Discover(sources), Gpus({0, 1}));
  sources.gpu_ids = "  ";
  EXPECT_EQ(Discover(sources), Gpus({0, 1}));
  sources.nvidia_smi_list.reset();
  EXPECT_EQ(Discover(sources), Cpus(1));
}

// --- NVIDIA_VISIBLE_DEVICES ---

TEST(LaneDiscoveryTest, NumericVisibleDevicesGiveOneLanePerGpu) {
  EXPECT_EQ(Discover(VisibleDevices("0,1")), Gpus({0, 1}));
  EXPECT_EQ(Discover(VisibleDevices("0")), Gpus({0}));
}

TEST(LaneDiscoveryTest, DuplicateNumericVisibleDevicesAreRefusedNamingTheVariable) {
  auto lanes = DiscoverLanes(VisibleDevices("0,0"));
  ASSERT_FALSE(lanes.ok());
  EXPECT_EQ(lanes.status().code(), StatusCode::kInvalid);
  EXPECT_NE(lanes.status().message().find("NVIDIA_VISIBLE_DEVICES"), std::string::npos) << lanes.status().message();
}

TEST(LaneDiscoveryTest, VisibleDevicesAllDefersToNvidiaSmi) {
  EXPECT_EQ(Discover(VisibleDevices("all", kTwoH100s)), Gpus({0, 1}));
  EXPECT_EQ(Discover(VisibleDevices(" all ", kTwoH100s)), Gpus({0, 1}));
  // "all" but nvidia-smi is absent: nothing is known, so CPU lanes.
  EXPECT_EQ(Discover(VisibleDevices("all")), Cpus(1));
}

TEST(LaneDiscoveryTest, VisibleDevicesNoneVoidOrEmptyMeanNoGpuEvenWhenNvidiaSmiListsSome) {
  for (const char* none : {"none", "void", ""}) {
    EXPECT_EQ(Discover(VisibleDevices(none, kTwoH100s)), Cpus(1)) << "NVIDIA_VISIBLE_DEVICES=\"" << none << "\"";
  }
}

TEST(LaneDiscoveryTest, VisibleDeviceUuidsAreNumberedInOrder) {
  EXPECT_EQ(Discover(VisibleDevices("GPU-3f1a2b4c-5d6e-7f80-91a2-b3c4d5e6f708,GPU-0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d")),
            Gpus({0, 1}));
  EXPECT_EQ(Discover(VisibleDevices("GPU-0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d")), Gpus({0}));
}

// --- nvidia-smi -L ---

TEST(LaneDiscoveryTest, NvidiaSmiListingGivesOneLanePerListedGpu) {
  LaneSources sources;
  sources.nvidia_smi_list = kTwoH100s;
  EXPECT_EQ(Discover(sources), Gpus({0, 1}));
}

TEST(LaneDiscoveryTest, NvidiaSmiListingIgnoresMigLinesAndOtherText) {
  LaneSources sources;
  sources.nvidia_smi_list =
      "GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-5fd2b1a7-1111-2222-3333-444455556666)\n"
      "  MIG 3g.40gb     Device  0: (UUID: MIG-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee)\n"
      "  MIG 3g.40gb     Device  1: (UUID: MIG-ffffffff-bbbb-cccc-dddd-eeeeeeeeeeee)\n"
      "GPU 1: NVIDIA A100-SXM4-80GB (UUID: GPU-5fd2b1a7-7777-2222-3333-444455556666)\n"
      "GPU x: not a GPU line\n"
      "\n";
  EXPECT_EQ(Discover(sources), Gpus({0, 1}));
}

TEST(LaneDiscoveryTest, NvidiaSmiWithNoGpuLinesGivesCpuLanes) {
  LaneSources sources;
  sources.nvidia_smi_list = "No devices were found\n";
  EXPECT_EQ(Discover(sources), Cpus(1));
  sources.nvidia_smi_list = "";
  EXPECT_EQ(Discover(sources), Cpus(1));
}

// --- precedence ---

TEST(LaneDiscoveryTest, GpuIdsWinOverVisibleDevicesAndNvidiaSmi) {
  LaneSources sources;
  sources.gpu_ids = "1";
  sources.nvidia_visible_devices = "0,1";
  sources.nvidia_smi_list = kTwoH100s;
  EXPECT_EQ(Discover(sources), Gpus({1}));
}

TEST(LaneDiscoveryTest, VisibleDevicesWinOverNvidiaSmi) {
  EXPECT_EQ(Discover(VisibleDevices("1", kTwoH100s)), Gpus({1}));
}

// --- CPU lanes ---

TEST(LaneDiscoveryTest, WithNoSourceAtAllThereAreCpuLanes) {
  LaneSources sources;
  EXPECT_EQ(Discover(sources), Cpus(1));
  sources.cpu_lanes = 3;
  EXPECT_EQ(Discover(sources), Cpus(3));
}

TEST(LaneDiscoveryTest, CpuLanesAreNotAddedBesideGpus) {
  LaneSources sources = GpuIds("0");
  sources.cpu_lanes = 4;
  EXPECT_EQ(Discover(sources), Gpus({0}));
}

// --- other GPUs (engine/gpu_chain.h's numbering) ---

TEST(LaneDiscoveryTest, WithoutNvidiaGpusTheMachinesOtherGpusAreLanes) {
  LaneSources sources;
  sources.numbered_gpus = {"vulkan:1", "vulkan:0"};  // a discrete GPU, then an integrated one
  sources.cpu_lanes = 2;
  auto lanes = DiscoverLanes(sources);
  ASSERT_TRUE(lanes.ok());
  ASSERT_EQ(lanes->size(), 2u);
  EXPECT_EQ((*lanes)[0].name, "vulkan:1");
  EXPECT_EQ((*lanes)[0].gpu_id, 0);
  EXPECT_EQ((*lanes)[1].name, "vulkan:0");
  EXPECT_EQ((*lanes)[1].gpu_id, 1);
}

TEST(LaneDiscoveryTest, NvidiaSourcesWinAndTheNumberingNamesTheirLanes) {
  LaneSources sources = GpuIds("1");
  sources.numbered_gpus = {"cuda:0", "cuda:1", "vulkan:2"};
  auto lanes = DiscoverLanes(sources);
  ASSERT_TRUE(lanes.ok());
  ASSERT_EQ(lanes->size(), 1u);
  EXPECT_EQ((*lanes)[0].name, "cuda:1");
  EXPECT_EQ((*lanes)[0].gpu_id, 1);
}

TEST(LaneDiscoveryTest, FewerThanOneCpuLaneIsRefused) {
  for (int count : {0, -1}) {
    LaneSources sources;
    sources.cpu_lanes = count;
    auto lanes = DiscoverLanes(sources);
    ASSERT_FALSE(lanes.ok()) << count;
    EXPECT_EQ(lanes.status().code(), StatusCode::kInvalid);
  }
}

}  // namespace
}  // namespace tessera::jobs
