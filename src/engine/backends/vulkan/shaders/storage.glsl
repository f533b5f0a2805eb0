// The storage type of activations (feature maps and vectors): fp32, or fp16 in
// each shader's "_fp16" variant (compiled with -DTESSERA_FP16; run where the
// device has VK_KHR_16bit_storage's storageBuffer16BitAccess). Arithmetic is
// fp32 in both: values are widened on load (float(x), exact) and rounded on
// store (act_t(v): to nearest on llvmpipe and common GPUs; Vulkan 1.0 leaves
// the mode to the driver). Weights, biases and slopes stay fp32.
#ifdef TESSERA_FP16
#extension GL_EXT_shader_16bit_storage : require
#define act_t float16_t
#else
#define act_t float
#endif
