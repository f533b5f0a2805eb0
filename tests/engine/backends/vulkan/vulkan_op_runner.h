// One layer through a Vulkan backend and through the reference kernels, for
// the op tests of either precision (vulkan_ops_test.cpp, vulkan_fp16_test.cpp).
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <vector>

#include "engine/backends/vulkan/vulkan_backend.h"
#include "engine/ops/reference_ops.h"

namespace tessera::engine::vulkan::test {

struct DeviceAndReference {
  Tensor device;     // the op's output, back on the host
  Tensor reference;  // the reference kernels' output
};

// `layer` on `backend` with `inputs` uploaded (input 0's storage given up to
// the op when `in_place`; every tensor checked to be of the backend's dtype),
// and on the reference kernels with `reference_inputs`. nullopt, with a test
// failure saying why, when either fails or the shapes differ.
inline std::optional<DeviceAndReference> RunOnDeviceAndReference(VulkanBackend& backend,
                                                                 const ncnn::LayerSpec& layer,
                                                                 const ncnn::LayerWeights& weights,
                                                                 const std::vector<Tensor>& inputs,
                                                                 const std::vector<Tensor>& reference_inputs,
                                                                 bool in_place = false) {
  std::vector<const Tensor*> host;
  for (const Tensor& t : reference_inputs) host.push_back(&t);
  auto expected = ops::ForwardLayer(layer, weights, host);
  EXPECT_TRUE(expected.ok()) << expected.status().ToString();
  std::unique_ptr<Op> op = backend.MakeOp(layer, weights);
  EXPECT_NE(op, nullptr) << layer.type << " declined";
  if (!expected.ok() || op == nullptr) return std::nullopt;
  std::vector<Tensor> on_device;
  for (const Tensor& t : inputs) {
    auto uploaded = backend.FromHost(t);
    EXPECT_TRUE(uploaded.ok()) << uploaded.status().ToString();
    if (!uploaded.ok()) return std::nullopt;
    EXPECT_EQ(uploaded->dtype, backend.dtype());
    on_device.push_back(std::move(uploaded).value());
  }
  OpInputs run;
  for (Tensor& t : on_device) {
    run.tensors.push_back(&t);
    run.writable.push_back(nullptr);
  }
  if (in_place) run.writable[0] = &on_device[0];
  auto got = op->Run(run);
  EXPECT_TRUE(got.ok()) << got.status().ToString();
  if (!got.ok()) return std::nullopt;
  EXPECT_EQ(got->dtype, backend.dtype());
  auto back = backend.ToHost(*got);
  EXPECT_TRUE(back.ok()) << back.status().ToString();
  if (!back.ok()) return std::nullopt;
  const Tensor& want = expected->front();
  if (back->dims != want.dims || back->n != want.n || back->c != want.c || back->h != want.h || back->w != want.w ||
      back->size() != want.size()) {
    ADD_FAILURE() << layer.type << ": the output's shape differs from the reference's";
    return std::nullopt;
  }
  return DeviceAndReference{std::move(back).value(), want};
}

}  // namespace tessera::engine::vulkan::test
