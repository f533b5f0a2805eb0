#!/usr/bin/python3
"""Exports an ncnn super-resolution model to ONNX for the ONNX Runtime side-by-side
(bench/onnx/compare.sh). Test tool only: never part of the product.

The graph and weights come from the project's float64 oracle (tests/oracle/
ncnn_oracle.py: its .param parser and its .bin loader, which checks that every
byte is consumed). From them this builds a float32 torch.nn.Module that
evaluates the same graph with torch's own layers (Conv2d, PReLU, PixelShuffle,
nearest interpolation...), so that the exported ONNX graph is made of the ops
ONNX Runtime optimises (Conv, PRelu, DepthToSpace, Resize) rather than of the
oracle's float64 formulas. Only the layer types and parameters the benchmarked
models use are supported; anything else is an error, not a guess.

Writes to OUT_DIR, for a padded input of SIZE x SIZE:
  NAME-SIZE.onnx        the graph, fixed input shape 1x3xSIZExSIZE
  NAME-SIZE.in.f32      the padded input (raw little-endian float32, 1x3xSIZExSIZE):
                        a deterministic textured image of SIZE-2p pixels padded by the
                        family's p px of reflect-101, as tessera pads a tile
  NAME-SIZE.ref.f32     the expected output on that input (float32) and
  NAME-SIZE.json        what the reference is and its tolerance, for the timing tools.
The reference is the oracle's float64 output when --check-size equals SIZE;
otherwise (realesrgan-x4plus takes minutes in float64) the module is checked
against the oracle on a CHECK x CHECK padded input, that small graph is exported
and written as NAME-CHECK.* too, and NAME-SIZE.ref.f32 is the float32 module's
output. Every check prints its max |diff| and fails past its tolerance.

  bench/onnx/export_onnx.py -n realesr-animevideov3-x4 --size 276 --out-dir build/bench-onnx
"""
import argparse
import json
import os
import sys
import time
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "oracle"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import ncnn_oracle  # noqa: E402

# torch 1.13's exporter warns about the constant scales of Resize; the exported graph is checked instead.
warnings.filterwarnings("ignore", message="The shape inference of prim::Constant")

# float32 module against the float64 oracle, on outputs in about [0, 1]
ORACLE_TOLERANCE = 1e-3
# two float32 evaluations of the same graph (torch against ONNX Runtime)
FLOAT32_TOLERANCE = 1e-4


class ExportError(Exception):
    pass


def _activation(act, params, where):
    if act == 0:
        return None
    if act == 1:
        return nn.ReLU()
    if act == 2:
        return nn.LeakyReLU(params[0] if params else 0.0)
    raise ExportError("%s: fused activation %d not supported by the exporter" % (where, act))


class ConvLayer(nn.Module):
    def __init__(self, layer):
        super().__init__()
        name = layer.ld.name
        if (layer.pl, layer.pt) != (layer.pr, layer.pb) or min(layer.pl, layer.pt) < 0:
            raise ExportError("%s: asymmetric or SAME padding not supported" % name)
        if layer.pad_value != 0.0:
            raise ExportError("%s: non-zero pad value not supported" % name)
        out = layer.num_output
        in_per_group = layer.wsize // (out * layer.kh * layer.kw)
        self.conv = nn.Conv2d(in_per_group * layer.group, out, (layer.kh, layer.kw), stride=(layer.sh, layer.sw),
                              padding=(layer.pt, layer.pl), dilation=(layer.dh, layer.dw), groups=layer.group,
                              bias=layer.bias is not None)
        with torch.no_grad():
            self.conv.weight.copy_(torch.from_numpy(layer.weight.reshape(self.conv.weight.shape)))
            if layer.bias is not None:
                self.conv.bias.copy_(torch.from_numpy(layer.bias))
        self.act = _activation(layer.act, layer.act_params, name)

    def forward(self, x):
        y = self.conv(x)
        return self.act(y) if self.act is not None else y


class PReluLayer(nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.prelu = nn.PReLU(layer.num_slope)
        with torch.no_grad():
            self.prelu.weight.copy_(torch.from_numpy(layer.slope))

    def forward(self, x):
        return self.prelu(x)


class NcnnGraph(nn.Module):
    """The ncnn graph in float32, batch of 1 (NCHW), layers in file order."""

    def __init__(self, net):
        super().__init__()
        self.steps = []  # (layer def, callable taking the bottoms' tensors)
        self.mods = nn.ModuleList()
        for ld, layer in zip(net.layer_defs, net.layers):
            self.steps.append((ld, self._step(ld, layer)))
        self.input_name = net.input_names()[0]
        self.output_name = net.layer_defs[-1].tops[0]

    def _keep(self, module):
        self.mods.append(module)
        return lambda xs: module(xs[0])

    def _step(self, ld, layer):
        pd, t = ld.pd, ld.type
        if t == "Input":
            return None
        if t == "Split":
            return lambda xs: xs[0]
        if t == "Convolution":
            return self._keep(ConvLayer(layer))
        if t == "PReLU":
            return self._keep(PReluLayer(layer))
        if t == "Concat":
            axis = pd.get_int(0, 0)
            if axis < 0:
                raise ExportError("%s: negative Concat axis not supported" % ld.name)
            return lambda xs: torch.cat(xs, dim=axis + 1)
        if t == "Eltwise":
            op = pd.get_int(0, 0)
            coeffs = [float(c) for c in pd.get_array(1)]
            if op != 1:
                raise ExportError("%s: Eltwise op %d not supported" % (ld.name, op))

            def weighted_sum(xs):
                y = xs[0] * coeffs[0] if coeffs else xs[0]
                for i, x in enumerate(xs[1:], 1):
                    y = y + (x * coeffs[i] if coeffs else x)
                return y
            return weighted_sum
        if t == "BinaryOp":
            op = pd.get_int(0, 0)
            if op != 0 or pd.get_int(1, 0) or len(ld.bottoms) != 2:
                raise ExportError("%s: only the two-blob BinaryOp add is supported" % ld.name)
            return lambda xs: xs[0] + xs[1]
        if t == "Interp":
            rt = pd.get_int(0, 0)
            hs, ws = pd.get_float(1, 1.0), pd.get_float(2, 1.0)
            if rt != 1 or pd.get_int(3, 0) or pd.get_int(4, 0) or hs != int(hs) or ws != int(ws):
                raise ExportError("%s: only nearest Interp by an integer scale is supported" % ld.name)
            # ncnn's nearest at an integer scale reads source pixel floor(d / s), as torch's does
            return lambda xs: F.interpolate(xs[0], scale_factor=(hs, ws), mode="nearest")
        if t == "PixelShuffle":
            if pd.get_int(1, 0) != 0:
                raise ExportError("%s: PixelShuffle mode 1 not supported" % ld.name)
            return self._keep(nn.PixelShuffle(pd.get_int(0, 1)))
        raise ExportError("layer type %s (%s) not supported by the exporter" % (t, ld.name))

    def forward(self, x):
        blobs = {self.input_name: x}
        for ld, step in self.steps:
            if step is None:
                continue
            y = step([blobs[b] for b in ld.bottoms])
            for top in ld.tops:
                blobs[top] = y
        return blobs[self.output_name]


def textured_image(size, seed):
    """size x size RGB in [0, 1]: gradients, edges and noise, deterministic."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    base = np.stack([0.6 * x + 0.2, 0.5 * y + 0.3 * np.sin(9 * x), 0.4 + 0.3 * np.cos(7 * (x + y))])
    base[:, size // 3:size // 2, :] *= 0.3  # a darker band with hard edges
    return np.clip(base + rng.normal(0, 0.05, base.shape), 0.0, 1.0)


def padded_input(size, pad, seed=14):
    if size <= 2 * pad:
        raise ExportError("padded size %d leaves no image inside %d px of padding" % (size, pad))
    image = torch.from_numpy(textured_image(size - 2 * pad, seed))
    return ncnn_oracle.pad_image(image, pad, pad, pad, pad, "reflect").contiguous()


def max_abs_diff(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def export(module, size, path):
    dummy = torch.zeros(1, 3, size, size, dtype=torch.float32)
    with torch.no_grad():
        torch.onnx.export(module, dummy, path, input_names=["input"], output_names=["output"],
                          opset_version=13, do_constant_folding=True)


def write_case(out_dir, name, size, module, x64, reference, ref_kind, tolerance):
    stem = os.path.join(out_dir, "%s-%d" % (name, size))
    export(module, size, stem + ".onnx")
    x64.to(torch.float32).numpy().astype("<f4").tofile(stem + ".in.f32")
    np.asarray(reference, dtype="<f4").tofile(stem + ".ref.f32")
    meta = {"model": name, "input_shape": [1, 3, size, size], "output_shape": [1] + list(reference.shape),
            "onnx": stem + ".onnx", "input": stem + ".in.f32", "reference": stem + ".ref.f32",
            "reference_kind": ref_kind, "tolerance": tolerance}
    with open(stem + ".json", "w") as f:
        json.dump(meta, f, indent=1)
    print("export: wrote %s.{onnx,in.f32,ref.f32,json} (reference: %s)" % (stem, ref_kind))


def run_module(module, x64):
    with torch.no_grad():
        return module(x64.to(torch.float32).unsqueeze(0))[0].numpy()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--name", required=True)
    ap.add_argument("--size", type=int, required=True, help="padded input side (the tile ONNX Runtime runs)")
    ap.add_argument("--check-size", type=int, default=0,
                    help="padded side of the check against the float64 oracle (default: --size)")
    ap.add_argument("--model-dir", default=os.environ.get("TESSERA_MODEL_DIR",
                                                          os.path.expanduser("~/.cache/tessera/models")))
    ap.add_argument("--out-dir", required=True)
    args = ap.parse_args(argv)
    check_size = args.check_size or args.size
    torch.set_num_threads(2)
    os.makedirs(args.out_dir, exist_ok=True)

    manifest = ncnn_oracle.load_manifest(args.model_dir)
    if args.name not in manifest:
        raise ExportError("model %s not in %s/manifest.json" % (args.name, args.model_dir))
    family = manifest[args.name]["family"]
    if family != "realesrgan":
        raise ExportError("only the realesrgan family's padding is wired here (got %s)" % family)
    pad = 10  # the realesrgan family's reflect padding (tests/oracle/README.md)

    net = ncnn_oracle.load_net(args.model_dir, args.name)
    module = NcnnGraph(net).eval()
    in_name, out_name = ncnn_oracle.FAMILY_IO[family]

    # The float32 module against the float64 oracle on the same padded input.
    x_check = padded_input(check_size, pad)
    start = time.time()
    with torch.no_grad():
        oracle = net.run({in_name: x_check}, out_name).numpy()
    mine = run_module(module, x_check)
    diff = max_abs_diff(mine, oracle)
    print("check: %s %dx%d float32 module vs float64 oracle: max |diff| %.3g (tolerance %g, oracle %.1f s)"
          % (args.name, check_size, check_size, diff, ORACLE_TOLERANCE, time.time() - start))
    if not diff <= ORACLE_TOLERANCE:
        raise ExportError("the float32 module does not reproduce the oracle")
    write_case(args.out_dir, args.name, check_size, module, x_check, oracle, "oracle-float64", ORACLE_TOLERANCE)
    if check_size != args.size:
        x = padded_input(args.size, pad)
        write_case(args.out_dir, args.name, args.size, module, x, run_module(module, x), "torch-float32",
                   FLOAT32_TOLERANCE)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ExportError, ncnn_oracle.OracleError) as ex:
        sys.stderr.write("export_onnx: error: %s\n" % ex)
        sys.exit(2)
