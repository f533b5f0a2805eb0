#!/usr/bin/python3
"""Self-checks for ncnn_oracle.py.

  python3 tests/oracle/selfcheck.py [--model-dir DIR] [--load-only] [--models a,b,c]
                                    [--size WxH] [--outdir DIR]

1. every model in the manifest loads and its .bin is consumed exactly;
2. every model runs on a small generated RGB image (gradient + dark area +
   edges): output size == input size * scale, values finite, in a sane
   range and not constant;
3. layer unit checks against independent formulations (ncnn bicubic vs. a
   direct per-pixel evaluation, PixelShuffle vs torch, Deconvolution vs an
   explicit scatter loop).
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ncnn_oracle as O  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402


def make_test_image(w, h, seed=1):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255.0 * x / max(w - 1, 1)
    g = 255.0 * y / max(h - 1, 1)
    b = 128 + 100 * np.sin(x / 3.0) * np.cos(y / 4.0)
    img = np.stack([r, g, b], -1)
    img[h // 2:, : w // 3] *= 0.1          # dark area
    img[:, w // 2: w // 2 + 2] = [250, 250, 250]  # vertical edge
    img[h // 4, :] = [10, 200, 30]          # horizontal line
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def unit_checks():
    ok = True
    torch.manual_seed(0)
    # bicubic: direct evaluation with clamped taps
    src = torch.rand(2, 7, 9, dtype=torch.float64)
    for (oh, ow) in [(14, 18), (3, 4), (21, 27), (5, 6)]:
        got = O.ncnn_interp_3d(src, 3, oh, ow)
        ref = torch.zeros(2, oh, ow, dtype=torch.float64)
        H, W = 7, 9
        for dy in range(oh):
            fy = (dy + 0.5) * H / oh - 0.5
            sy = int(np.floor(fy))
            cy = O._cubic_w(fy - sy)
            for dx in range(ow):
                fx = (dx + 0.5) * W / ow - 0.5
                sx = int(np.floor(fx))
                cx = O._cubic_w(fx - sx)
                acc = torch.zeros(2, dtype=torch.float64)
                for a in range(4):
                    for b in range(4):
                        yy = min(max(sy - 1 + a, 0), H - 1)
                        xx = min(max(sx - 1 + b, 0), W - 1)
                        acc += cy[a] * cx[b] * src[:, yy, xx]
                ref[:, dy, dx] = acc
        d = (got - ref).abs().max().item()
        ok &= d < 1e-12
        print("unit bicubic %dx%d -> %dx%d maxdiff %.3g" % (H, W, oh, ow, d))
    # bicubic keeps constants
    c = torch.full((1, 6, 6), 0.7, dtype=torch.float64)
    d = (O.ncnn_interp_3d(c, 3, 12, 12) - 0.7).abs().max().item()
    ok &= d < 1e-12
    print("unit bicubic constant preservation maxdiff %.3g" % d)
    # pixelshuffle mode 0 == torch.pixel_shuffle
    x = torch.rand(12, 3, 5, dtype=torch.float64)
    ld = O.LayerDef("PixelShuffle", "ps", ["a"], ["b"], O.ParamDict({0: 2}))
    got = O.PixelShuffleL(ld).forward([x])[0]
    ref = torch.nn.functional.pixel_shuffle(x.unsqueeze(0), 2)[0]
    d = (got - ref).abs().max().item()
    ok &= d == 0
    print("unit pixelshuffle maxdiff %.3g" % d)
    # deconvolution vs explicit ncnn-style scatter
    inch, outch, k, s, pad = 3, 2, 4, 2, 3
    ld = O.LayerDef("Deconvolution", "dc", ["a"], ["b"],
                    O.ParamDict({0: outch, 1: k, 3: s, 4: pad, 5: 1, 6: outch * inch * k * k}))
    L = O.DeconvolutionL(ld)
    L.weight = np.random.RandomState(0).randn(outch * inch * k * k)
    L.bias = np.array([0.25, -0.5])
    x = torch.rand(inch, 4, 5, dtype=torch.float64)
    got = L.forward([x])[0]
    Wt = L.weight.reshape(outch, inch, k, k)
    full = np.zeros((outch, (4 - 1) * s + k, (5 - 1) * s + k))
    full += L.bias[:, None, None]
    xn = x.numpy()
    for p in range(outch):
        for i in range(4):
            for j in range(5):
                for q in range(inch):
                    full[p, i * s:i * s + k, j * s:j * s + k] += xn[q, i, j] * Wt[p, q]
    ref = full[:, pad:full.shape[1] - pad, pad:full.shape[2] - pad]
    d = np.abs(got.numpy() - ref).max()
    ok &= d < 1e-12
    print("unit deconvolution maxdiff %.3g" % d)
    # param parser sentinel / array handling
    pd = O.ParamDict({9: [4, 4], 10: [-4, -4], 11: [-2, -1]})
    ld = O.LayerDef("Crop", "c", ["a"], ["b"], pd)
    y = O.CropL(ld).forward([torch.zeros(3, 20, 30, dtype=torch.float64)])[0]
    ok &= tuple(y.shape) == (3, 12, 22)
    print("unit crop starts/ends/axes shape", tuple(y.shape))
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", default=os.path.expanduser("~/.cache/tessera/models"))
    ap.add_argument("--load-only", action="store_true")
    ap.add_argument("--models", default="")
    ap.add_argument("--size", default="24x20")
    ap.add_argument("--outdir", default="")
    args = ap.parse_args()
    man = O.load_manifest(args.model_dir)
    names = [n for n in man] if not args.models else args.models.split(",")
    w, h = (int(v) for v in args.size.split("x"))
    img = make_test_image(w, h)
    all_ok = unit_checks()
    if args.outdir:
        os.makedirs(args.outdir, exist_ok=True)
        from PIL import Image
        Image.fromarray(img).save(os.path.join(args.outdir, "smoke_input.png"))
    for n in names:
        e = man[n]
        t0 = time.time()
        try:
            net = O.load_net(args.model_dir, n)
        except O.OracleError as ex:
            print("LOAD FAIL %-26s %s" % (n, ex))
            all_ok = False
            continue
        line = "LOAD ok   %-26s bin %9d/%9d bytes consumed  fp16=%d fp32=%d  layers=%d" % (
            n, net.bin_consumed, net.bin_size, net.bin_stats["fp16"], net.bin_stats["fp32"],
            len(net.layers))
        print(line)
        if args.load_only:
            continue
        rgb_raw, _ = O.upscale_image(net, e["family"], int(e["scale"]), int(e["noise"]), img)
        out = O.quantize(rgb_raw)
        s = int(e["scale"])
        size_ok = out.shape == (h * s, w * s, 3)
        finite = np.isfinite(rgb_raw).all()
        std = out.reshape(-1, 3).std(axis=0)
        # mean absolute difference against a nearest-upscaled input (plausibility)
        up = img.repeat(s, 0).repeat(s, 1).astype(np.float64)
        mad = np.abs(out.astype(np.float64) - up).mean()
        sane = size_ok and finite and std.min() > 5 and mad < 40 and rgb_raw.min() > -100 and rgb_raw.max() < 400
        all_ok &= bool(sane)
        print("SMOKE %s %-26s out %s raw[min %.1f max %.1f] std %s  MAD-vs-nearest %.2f  (%.1fs)" % (
            "ok  " if sane else "FAIL", n, out.shape, rgb_raw.min(), rgb_raw.max(),
            np.array2string(std, precision=1), mad, time.time() - t0))
        if args.outdir:
            from PIL import Image
            Image.fromarray(out).save(os.path.join(args.outdir, "smoke_%s.png" % n))
    print("ALL OK" if all_ok else "SOME CHECKS FAILED")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
