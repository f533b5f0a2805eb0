#!/usr/bin/python3
"""PSNR / difference statistics between two 8-bit images of equal size.

  python3 tests/oracle/psnr.py A.png B.png
"""
import sys

import numpy as np
from PIL import Image


def stats(a, b):
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    d = a - b
    mse = (d * d).mean()
    psnr = float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)
    return psnr, np.abs(d).max(), (d != 0).mean()


def main():
    A = Image.open(sys.argv[1])
    B = Image.open(sys.argv[2])
    mode = "RGBA" if "A" in A.mode or "A" in B.mode else "RGB"
    a = np.asarray(A.convert(mode))
    b = np.asarray(B.convert(mode))
    if a.shape != b.shape:
        print("SIZE MISMATCH %s vs %s" % (a.shape, b.shape))
        return 1
    p, mx, frac = stats(a[..., :3], b[..., :3])
    print("RGB  PSNR %.2f dB  max|diff| %d  differing %.4f%%" % (p, mx, 100 * frac))
    if mode == "RGBA":
        p, mx, frac = stats(a[..., 3], b[..., 3])
        print("A    PSNR %.2f dB  max|diff| %d  differing %.4f%%" % (p, mx, 100 * frac))
    return 0


if __name__ == "__main__":
    sys.exit(main())
