#!/usr/bin/python3
"""Regenerates the golden images the engine is tested against (`make goldens`).

Makes small deterministic inputs under tests/data/inputs/ (gradients, a dark
scene, line art, text-like marks, 1x1, odd sizes, alpha), runs every model of
GOLDEN_MODELS on each through the float64 oracle (ncnn_oracle.py, whole image,
no tiling), and writes tests/data/goldens/<model>/<input>.png plus
tests/data/goldens/manifest.json. Needs python3-torch, python3-numpy,
python3-pil (test-only tools); `make test` only reads the results.
"""
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INPUTS = os.path.join(ROOT, "tests", "data", "inputs")
GOLDENS = os.path.join(ROOT, "tests", "data", "goldens")
ORACLE = os.path.join(ROOT, "tests", "oracle", "ncnn_oracle.py")
MODEL_DIR = os.environ.get("TESSERA_MODEL_DIR", os.path.expanduser("~/.cache/tessera/models"))

# One model per family and scale, plus denoise variants and the slow x4plus.
GOLDEN_MODELS = [
    "realesr-animevideov3-x2", "realesr-animevideov3-x3", "realesr-animevideov3-x4",
    "realesrgan-x4plus", "realesrgan-x4fast", "realesrgan-x4plus-anime",
    "up2x-conservative", "up2x-denoise3x", "up3x-conservative", "up4x-conservative",
    "cunet-x2", "cunet-noise1", "cunet-noise2-x2",
]


def make_inputs():
    rng = np.random.default_rng(20261123)
    images = {}
    y, x = np.mgrid[0:24, 0:32]
    images["gradient"] = np.stack([x * 8, y * 10, (x + y) * 4], -1)
    y, x = np.mgrid[0:30, 0:40]
    dark = 12 + 6 * np.sin(x / 5.0) + 4 * np.cos(y / 3.0)
    dark[8:20, 10:18] = 35
    dark[22:26, 25:38] = 2
    images["dark"] = np.stack([dark, dark * 0.8, dark * 1.1], -1)
    line = np.full((36, 36), 235.0)
    for k in range(0, 36, 7):
        line[k, :] = 10
        line[:, (k * 3) % 36] = 20
    np.fill_diagonal(line, 0)
    images["lineart"] = np.stack([line] * 3, -1)
    text = np.full((20, 48), 200.0)
    for i in range(9):
        x0 = 2 + i * 5
        h = int(rng.integers(6, 14))
        text[3:3 + h, x0:x0 + 1] = 15
        text[3, x0:x0 + 4] = 15
        text[3 + h // 2, x0:x0 + 3] = 30
    images["text"] = np.stack([text, text, text * 0.95], -1)
    images["one_pixel"] = np.array([[[180, 60, 20]]], dtype=np.float64)
    y, x = np.mgrid[0:23, 0:37]
    odd = np.stack([x * 6.0, y * 9.0, np.full_like(x, 128.0)], -1) + rng.normal(0, 18, (23, 37, 3))
    images["odd_37x23"] = odd
    y, x = np.mgrid[0:20, 0:24]
    rgb = np.stack([x * 10.0, 255 - y * 12.0, np.full_like(x, 90.0)], -1)
    alpha = np.clip((x + y) * 6.0, 0, 255)[..., None]
    images["alpha"] = np.concatenate([rgb, alpha], -1)
    os.makedirs(INPUTS, exist_ok=True)
    for name, arr in images.items():
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        mode = "RGBA" if arr.shape[-1] == 4 else "RGB"
        Image.fromarray(arr, mode).save(os.path.join(INPUTS, name + ".png"))
    return sorted(images)


def main():
    inputs = make_inputs()
    entries = []
    for model in GOLDEN_MODELS:
        os.makedirs(os.path.join(GOLDENS, model), exist_ok=True)
        for name in inputs:
            out = os.path.join(GOLDENS, model, name + ".png")
            cmd = [sys.executable, ORACLE, "--model-dir", MODEL_DIR, "-n", model,
                   "-i", os.path.join(INPUTS, name + ".png"), "-o", out]
            subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
            entries.append({"model": model, "input": "inputs/" + name + ".png",
                            "golden": "goldens/" + model + "/" + name + ".png"})
            print("golden", model, name, flush=True)
    with open(os.path.join(GOLDENS, "manifest.json"), "w") as f:
        json.dump({"oracle": "tests/oracle/ncnn_oracle.py", "entries": entries}, f, indent=1)


if __name__ == "__main__":
    main()
