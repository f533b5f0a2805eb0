// Which GPU a generator sees (seed 001: one GPU per job): its lane's CUDA
// device, and none on a lane CUDA does not number.
#include <gtest/gtest.h>

#include "jobs/generate_executor.h"

namespace tessera::jobs {
namespace {

TEST(GenerateExecutorTest, TheGeneratorSeesItsLanesCudaDeviceAndNoneOnOtherLanes) {
  EXPECT_EQ(CudaVisibleDevicesFor({"cuda:0", 0}), "0");
  EXPECT_EQ(CudaVisibleDevicesFor({"cuda:3", 3}), "3");
  // A Vulkan GPU's gpu_id counts every real GPU: "1" would name a CUDA device
  // of another lane, or one that does not exist.
  EXPECT_EQ(CudaVisibleDevicesFor({"vulkan:0", 1}), "");
  EXPECT_EQ(CudaVisibleDevicesFor({"vulkan:2", 0}), "");
  EXPECT_EQ(CudaVisibleDevicesFor({"cpu:0", -1}), "");
}

}  // namespace
}  // namespace tessera::jobs
