// cuDNN 9, loaded at run time (dlopen "libcudnn.so.9"): a machine without cuDNN
// still runs the CUDA backend on its own convolution kernels, and a binary
// built here starts on machines with no CUDA libraries at all. The functions
// the backend calls, as pointers with cuDNN's own types.
//
// The classic convolution API (descriptors, cudnnConvolutionForward,
// cudnnConvolutionBackwardData for deconvolution): marked deprecated in cuDNN 9
// in favour of the graph API but supported through 9.x, and a fixed algorithm
// per layer is all the backend needs (docs/gpu.md says why).
#pragma once

#define CUDNN_WARN_DEPRECATED_OFF
#include <cudnn.h>

#include <string>

namespace tessera::engine::cuda {

#define TESSERA_CUDNN_FUNCTIONS(X)                   \
  X(cudnnGetVersion)                                 \
  X(cudnnGetErrorString)                             \
  X(cudnnCreate)                                     \
  X(cudnnDestroy)                                    \
  X(cudnnSetStream)                                  \
  X(cudnnCreateTensorDescriptor)                     \
  X(cudnnDestroyTensorDescriptor)                    \
  X(cudnnSetTensor4dDescriptor)                      \
  X(cudnnCreateFilterDescriptor)                     \
  X(cudnnDestroyFilterDescriptor)                    \
  X(cudnnSetFilter4dDescriptor)                      \
  X(cudnnCreateConvolutionDescriptor)                \
  X(cudnnDestroyConvolutionDescriptor)               \
  X(cudnnSetConvolution2dDescriptor)                 \
  X(cudnnSetConvolutionMathType)                     \
  X(cudnnGetConvolutionForwardAlgorithm_v7)          \
  X(cudnnGetConvolutionForwardWorkspaceSize)         \
  X(cudnnConvolutionForward)                         \
  X(cudnnGetConvolutionBackwardDataAlgorithm_v7)     \
  X(cudnnGetConvolutionBackwardDataWorkspaceSize)    \
  X(cudnnConvolutionBackwardData)

struct CudnnLibrary {
#define TESSERA_CUDNN_POINTER(name) decltype(&::name) name = nullptr;
  TESSERA_CUDNN_FUNCTIONS(TESSERA_CUDNN_POINTER)
#undef TESSERA_CUDNN_POINTER
  size_t version = 0;  // cudnnGetVersion(): 91900 for 9.19.0
};

// The library, loaded once per process; null when it cannot be (`why` says
// why: not found, wrong major version, a function missing). TESSERA_CUDNN=off
// skips it (tests of the backend's own kernels).
const CudnnLibrary* LoadCudnn(std::string* why = nullptr);

// "9.19.0".
std::string CudnnVersionText(size_t version);

}  // namespace tessera::engine::cuda
