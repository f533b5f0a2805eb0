#!/usr/bin/python3
"""Independent float64 test oracle for ncnn-format super-resolution models.

Parses ncnn text .param files, loads the .bin weights exactly as ncnn's
ModelBin does (and checks that the file is consumed to the last byte),
evaluates the graph in float64 with PyTorch on the CPU, and reproduces the
pre/post-processing of the reference programs (realesrgan-ncnn-vulkan,
realcugan-ncnn-vulkan, waifu2x-ncnn-vulkan) on the WHOLE image (no tiling).

CLI:
  python3 tests/oracle/ncnn_oracle.py --model-dir DIR -n NAME -i IN.png -o OUT.png [--raw OUT.npy]

See tests/oracle/README.md for the semantics, the verification that was done
and the known limits.
"""

import argparse
import json
import math
import os
import struct
import sys

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from PIL import Image
except ImportError:  # pragma: no cover - interpreter selection helper
    # The default `python3` on the dev box may be a pyenv interpreter without
    # torch; Debian's python3-torch lives in /usr/bin/python3.
    if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") and \
            os.path.exists("/usr/bin/python3") and not os.environ.get("NCNN_ORACLE_REEXEC"):
        os.environ["NCNN_ORACLE_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

DT = torch.float64
torch.set_num_threads(2)


class OracleError(Exception):
    pass


# ---------------------------------------------------------------------------
# .param parsing
# ---------------------------------------------------------------------------

def _vstr_is_float(s):
    # ncnn decides int vs float per token: '.' or 'e'/'E' anywhere => float
    return any(c == '.' or c in 'eE' for c in s)


def _parse_scalar(s):
    if _vstr_is_float(s):
        return float(s)
    return int(s)


class ParamDict:
    """Holds the k=v pairs of one layer. Scalars keep their parsed type
    (int or float); arrays are python lists."""

    def __init__(self, items):
        self.items = items  # id -> value (int | float | list)

    def has(self, pid):
        return pid in self.items

    def get_int(self, pid, default):
        if pid not in self.items:
            return default
        v = self.items[pid]
        if isinstance(v, list):
            raise OracleError("param %d is an array, expected int" % pid)
        if isinstance(v, float):
            # ncnn would reinterpret the union; no model here does this
            raise OracleError("param %d stored as float (%r) but read as int" % (pid, v))
        return v

    def get_float(self, pid, default):
        if pid not in self.items:
            return float(default)
        v = self.items[pid]
        if isinstance(v, list):
            raise OracleError("param %d is an array, expected float" % pid)
        if isinstance(v, int):
            # In ncnn an int-typed text value read as float would be a bit
            # reinterpretation; ParamDict::get(int, float) in recent ncnn
            # converts for type 2 (int) -> float. Be strict but sensible.
            return float(v)
        return v

    def get_array(self, pid):
        if pid not in self.items:
            return []
        v = self.items[pid]
        if not isinstance(v, list):
            raise OracleError("param %d is a scalar, expected array" % pid)
        return v


class LayerDef:
    def __init__(self, typ, name, bottoms, tops, pd):
        self.type = typ
        self.name = name
        self.bottoms = bottoms
        self.tops = tops
        self.pd = pd


def parse_param(path):
    with open(path, "r") as f:
        text = f.read()
    lines = [ln for ln in text.splitlines() if ln.strip() != ""]
    if not lines or lines[0].split()[0] != "7767517":
        raise OracleError("%s: bad magic (want 7767517)" % path)
    layer_count, blob_count = (int(x) for x in lines[1].split()[:2])
    layers = []
    blob_names = set()
    for ln in lines[2:]:
        tok = ln.split()
        typ, name = tok[0], tok[1]
        nb, nt = int(tok[2]), int(tok[3])
        bottoms = tok[4:4 + nb]
        tops = tok[4 + nb:4 + nb + nt]
        items = {}
        for kv in tok[4 + nb + nt:]:
            k, v = kv.split("=", 1)
            k = int(k)
            if k <= -23300:
                pid = -k - 23300
                parts = v.split(",")
                n = int(parts[0])
                vals = [_parse_scalar(p) for p in parts[1:1 + n]]
                if len(vals) != n:
                    raise OracleError("%s: array param %d of layer %s: count %d != %d values"
                                      % (path, pid, name, n, len(vals)))
                items[pid] = vals
            else:
                items[k] = _parse_scalar(v)
        layers.append(LayerDef(typ, name, bottoms, tops, ParamDict(items)))
        blob_names.update(bottoms)
        blob_names.update(tops)
    if len(layers) != layer_count:
        raise OracleError("%s: header says %d layers, found %d" % (path, layer_count, len(layers)))
    if len(blob_names) != blob_count:
        raise OracleError("%s: header says %d blobs, found %d" % (path, blob_count, len(blob_names)))
    return layers


# ---------------------------------------------------------------------------
# .bin loading (ncnn ModelBinFromDataReader::load)
# ---------------------------------------------------------------------------

class ModelBin:
    def __init__(self, path):
        with open(path, "rb") as f:
            self.data = f.read()
        self.off = 0
        self.stats = {"fp32": 0, "fp16": 0, "raw_extra_scale": 0}

    def _read(self, n):
        if self.off + n > len(self.data):
            raise OracleError("bin: read of %d bytes at %d runs past end (%d)"
                              % (n, self.off, len(self.data)))
        b = self.data[self.off:self.off + n]
        self.off += n
        return b

    def load(self, w, typ):
        """Returns a float64 numpy array of w values."""
        if typ == 1:
            self.stats["fp32"] += 1
            return np.frombuffer(self._read(4 * w), dtype="<f4").astype(np.float64)
        if typ != 0:
            raise OracleError("ModelBin load type %d not implemented" % typ)
        flag_bytes = self._read(4)
        tag = struct.unpack("<I", flag_bytes)[0]
        if tag == 0x01306B47:
            # float16, padded to 4 bytes
            nbytes = w * 2
            nbytes_al = (nbytes + 3) // 4 * 4
            raw = self._read(nbytes_al)
            self.stats["fp16"] += 1
            return np.frombuffer(raw[:nbytes], dtype="<f2").astype(np.float64)
        if tag == 0x000D4B38:
            raise OracleError("int8 quantised weights (tag 0x000D4B38) are not supported by the oracle")
        if tag == 0x0002C056:
            # ncnn: "raw data with extra scaling" -- float32 values follow
            self.stats["raw_extra_scale"] += 1
            return np.frombuffer(self._read(4 * w), dtype="<f4").astype(np.float64)
        if sum(flag_bytes) != 0:
            raise OracleError("quantised (256-entry table) weights, flag 0x%08x, not supported" % tag)
        self.stats["fp32"] += 1
        return np.frombuffer(self._read(4 * w), dtype="<f4").astype(np.float64)


# ---------------------------------------------------------------------------
# activation (ncnn fused_activation.h: activation_ss)
# ---------------------------------------------------------------------------

def activation(x, typ, params):
    if typ == 0:
        return x
    if typ == 1:
        return torch.clamp(x, min=0.0)
    if typ == 2:
        slope = params[0] if params else 0.0
        return torch.where(x > 0, x, x * slope)
    if typ == 3:
        return torch.clamp(x, min=params[0], max=params[1])
    if typ == 4:
        return 1.0 / (1.0 + torch.exp(-x))
    if typ == 5:
        return x * torch.tanh(torch.log(torch.exp(x) + 1.0))
    if typ == 6:
        alpha, beta = params[0], params[1]
        lower = -beta / alpha
        upper = (1.0 / alpha) + lower
        return torch.where(x < lower, torch.zeros_like(x),
                           torch.where(x > upper, x, x * (x * alpha + beta)))
    raise OracleError("unknown activation_type %d" % typ)


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a)).to(DT)


# ---------------------------------------------------------------------------
# resampling helpers (ncnn Interp coefficient rules)
# ---------------------------------------------------------------------------

def _cubic_w(fx):
    A = -0.75
    fx0 = fx + 1.0
    fx1 = fx
    fx2 = 1.0 - fx
    c0 = A * fx0 * fx0 * fx0 - 5 * A * fx0 * fx0 + 8 * A * fx0 - 4 * A
    c1 = (A + 2) * fx1 * fx1 * fx1 - (A + 3) * fx1 * fx1 + 1
    c2 = (A + 2) * fx2 * fx2 * fx2 - (A + 3) * fx2 * fx2 + 1
    c3 = 1.0 - c0 - c1 - c2
    return (c0, c1, c2, c3)


def resample_matrix(n_in, n_out, kind, align_corner=0, scale_hint=None):
    """(n_out, n_in) float64 matrix reproducing ncnn's 1-D interpolation.

    kind: 'nearest' | 'linear' | 'cubic'.
    For 'nearest', scale_hint is ncnn's per-axis float32 step (hs/ws).
    Taps outside [0, n_in-1] are clamped to the edge, which is exactly what
    ncnn's re-centring of xofs/alpha does whenever n_in >= 4 (cubic) or
    n_in >= 2 (linear)."""
    M = np.zeros((n_out, n_in), dtype=np.float64)
    if kind == "nearest":
        step = np.float32(scale_hint)
        for d in range(n_out):
            s = int(np.float32(d) * step)  # float32 product, truncation like (int)
            s = min(s, n_in - 1)
            M[d, s] = 1.0
        return M
    if align_corner:
        scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    else:
        scale = n_in / n_out
    for d in range(n_out):
        if align_corner:
            fx = d * scale
        else:
            fx = (d + 0.5) * scale - 0.5
        sx = math.floor(fx)
        fx -= sx
        if kind == "linear":
            taps = [(sx, 1.0 - fx), (sx + 1, fx)]
            if sx < 0:
                taps = [(0, 1.0)]
            elif sx >= n_in - 1:
                taps = [(n_in - 1, 1.0)]
        elif kind == "cubic":
            c = _cubic_w(fx)
            taps = [(sx - 1 + k, c[k]) for k in range(4)]
        else:
            raise OracleError("bad resample kind %s" % kind)
        for idx, wgt in taps:
            idx = min(max(idx, 0), n_in - 1)
            M[d, idx] += wgt
    return M


def ncnn_interp_3d(x, resize_type, outh, outw, align_corner=0, hs_nearest=None, ws_nearest=None):
    """x: (C,H,W) float64 -> (C,outh,outw)."""
    C, H, W = x.shape
    if resize_type == 1:
        My = resample_matrix(H, outh, "nearest", scale_hint=hs_nearest)
        Mx = resample_matrix(W, outw, "nearest", scale_hint=ws_nearest)
    elif resize_type == 2:
        My = resample_matrix(H, outh, "linear", align_corner)
        Mx = resample_matrix(W, outw, "linear", align_corner)
    elif resize_type == 3:
        if H < 4 or W < 4:
            sys.stderr.write("ncnn_oracle: warning: bicubic on a side < 4 px is out-of-bounds "
                             "in ncnn; oracle clamps taps instead\n")
        My = resample_matrix(H, outh, "cubic", align_corner)
        Mx = resample_matrix(W, outw, "cubic", align_corner)
    else:
        raise OracleError("Interp resize_type %d not supported" % resize_type)
    My = _t(My)
    Mx = _t(Mx)
    return torch.einsum("oh,chw,pw->cop", My, x, Mx)


# ---------------------------------------------------------------------------
# layers
# ---------------------------------------------------------------------------

def _pad_mode_amounts(pl, pr, pt, pb, w, h, kext_w, kext_h, sw, sh):
    """ncnn make_padding rules -> (left, right, top, bottom)."""
    if pl > 0 or pr > 0 or pt > 0 or pb > 0:
        return max(pl, 0), max(pr, 0), max(pt, 0), max(pb, 0)
    if pl == -233 and pr == -233 and pt == -233 and pb == -233:
        wpad = kext_w + (w - 1) // sw * sw - w
        hpad = kext_h + (h - 1) // sh * sh - h
        if wpad > 0 or hpad > 0:
            return wpad // 2, wpad - wpad // 2, hpad // 2, hpad - hpad // 2
        return 0, 0, 0, 0
    if pl == -234 and pr == -234 and pt == -234 and pb == -234:
        wpad = kext_w + (w - 1) // sw * sw - w
        hpad = kext_h + (h - 1) // sh * sh - h
        if wpad > 0 or hpad > 0:
            return wpad - wpad // 2, wpad // 2, hpad - hpad // 2, hpad // 2
        return 0, 0, 0, 0
    return 0, 0, 0, 0


class Layer:
    one_blob = True

    def __init__(self, ld):
        self.ld = ld
        self.pd = ld.pd

    def load_model(self, mb):
        pass

    def forward(self, inputs):
        raise NotImplementedError


class InputL(Layer):
    def forward(self, inputs):
        raise OracleError("Input layer must be fed")


class SplitL(Layer):
    def forward(self, inputs):
        return [inputs[0]] * len(self.ld.tops)


class ConvolutionL(Layer):
    def __init__(self, ld):
        super().__init__(ld)
        pd = self.pd
        self.num_output = pd.get_int(0, 0)
        self.kw = pd.get_int(1, 0)
        self.kh = pd.get_int(11, self.kw)
        self.dw = pd.get_int(2, 1)
        self.dh = pd.get_int(12, self.dw)
        self.sw = pd.get_int(3, 1)
        self.sh = pd.get_int(13, self.sw)
        self.pl = pd.get_int(4, 0)
        self.pr = pd.get_int(15, self.pl)
        self.pt = pd.get_int(14, self.pl)
        self.pb = pd.get_int(16, self.pt)
        self.pad_value = pd.get_float(18, 0.0)
        self.bias_term = pd.get_int(5, 0)
        self.wsize = pd.get_int(6, 0)
        self.int8 = pd.get_int(8, 0)
        self.act = pd.get_int(9, 0)
        self.act_params = [float(v) for v in pd.get_array(10)]
        self.dynamic = pd.get_int(19, 0)
        self.group = 1
        if self.int8:
            raise OracleError("%s: int8 convolution not supported" % ld.name)
        if self.dynamic:
            raise OracleError("%s: dynamic-weight convolution not supported" % ld.name)

    def load_model(self, mb):
        self.weight = mb.load(self.wsize, 0)
        self.bias = mb.load(self.num_output, 1) if self.bias_term else None

    def forward(self, inputs):
        x = inputs[0]
        if x.dim() != 3:
            if x.dim() == 1 and self.kw == 1 and self.kh == 1:
                num_input = self.wsize // self.num_output
                if x.shape[0] == num_input:
                    W = _t(self.weight).reshape(self.num_output, num_input)
                    y = W @ x
                    if self.bias is not None:
                        y = y + _t(self.bias)
                    return [activation(y, self.act, self.act_params)]
            raise OracleError("%s: convolution on %d-D blob not supported" % (self.ld.name, x.dim()))
        C, H, Wd = x.shape
        kext_w = self.dw * (self.kw - 1) + 1
        kext_h = self.dh * (self.kh - 1) + 1
        l, r, t, b = _pad_mode_amounts(self.pl, self.pr, self.pt, self.pb, Wd, H,
                                       kext_w, kext_h, self.sw, self.sh)
        if l or r or t or b:
            x = F.pad(x.unsqueeze(0), (l, r, t, b), mode="constant", value=self.pad_value).squeeze(0)
        cin_g = C // self.group
        W = _t(self.weight).reshape(self.num_output, cin_g, self.kh, self.kw)
        if W.numel() != self.wsize:
            raise OracleError("%s: weight size mismatch" % self.ld.name)
        bias = _t(self.bias) if self.bias is not None else None
        y = F.conv2d(x.unsqueeze(0), W, bias, stride=(self.sh, self.sw),
                     dilation=(self.dh, self.dw), groups=self.group).squeeze(0)
        return [activation(y, self.act, self.act_params)]


class ConvolutionDepthWiseL(ConvolutionL):
    def __init__(self, ld):
        super().__init__(ld)
        self.group = self.pd.get_int(7, 1)


class DeconvolutionL(Layer):
    def __init__(self, ld):
        super().__init__(ld)
        pd = self.pd
        self.num_output = pd.get_int(0, 0)
        self.kw = pd.get_int(1, 0)
        self.kh = pd.get_int(11, self.kw)
        self.dw = pd.get_int(2, 1)
        self.dh = pd.get_int(12, self.dw)
        self.sw = pd.get_int(3, 1)
        self.sh = pd.get_int(13, self.sw)
        self.pl = pd.get_int(4, 0)
        self.pr = pd.get_int(15, self.pl)
        self.pt = pd.get_int(14, self.pl)
        self.pb = pd.get_int(16, self.pt)
        self.opr = pd.get_int(18, 0)
        self.opb = pd.get_int(19, self.opr)
        self.out_w = pd.get_int(20, 0)
        self.out_h = pd.get_int(21, self.out_w)
        self.bias_term = pd.get_int(5, 0)
        self.wsize = pd.get_int(6, 0)
        self.act = pd.get_int(9, 0)
        self.act_params = [float(v) for v in pd.get_array(10)]
        self.group = 1
        if pd.get_int(28, 0):
            raise OracleError("%s: dynamic-weight deconvolution not supported" % ld.name)

    def load_model(self, mb):
        self.weight = mb.load(self.wsize, 0)
        self.bias = mb.load(self.num_output, 1) if self.bias_term else None

    def forward(self, inputs):
        x = inputs[0]
        if x.dim() != 3:
            raise OracleError("%s: deconvolution on %d-D blob" % (self.ld.name, x.dim()))
        C, H, Wd = x.shape
        g = self.group
        cin_g = C // g
        cout_g = self.num_output // g
        # ncnn layout: [group][outch_g][inch_g][kh][kw]; ncnn scatters
        # out[p, i*s + ki*d, j*s + kj*d] += in[q,i,j] * w[p][q][ki][kj]
        # which is torch's conv_transpose2d with weight [in][out/g][kh][kw].
        W = _t(self.weight).reshape(g, cout_g, cin_g, self.kh, self.kw)
        W = W.permute(0, 2, 1, 3, 4).reshape(g * cin_g, cout_g, self.kh, self.kw)
        bias = _t(self.bias) if self.bias is not None else None
        y = F.conv_transpose2d(x.unsqueeze(0), W, bias, stride=(self.sh, self.sw),
                               dilation=(self.dh, self.dw), groups=g).squeeze(0)
        if self.opr or self.opb:
            # output_pad extends bottom/right with bias only (the scatter never reaches it)
            padv = torch.zeros((self.num_output, y.shape[1] + self.opb, y.shape[2] + self.opr), dtype=DT)
            if bias is not None:
                padv += bias.view(-1, 1, 1)
            padv[:, :y.shape[1], :y.shape[2]] = y
            y = padv
        y = activation(y, self.act, self.act_params)
        # cut_padding
        oh, ow = y.shape[1], y.shape[2]
        if self.pl > 0 or self.pr > 0 or self.pt > 0 or self.pb > 0:
            y = y[:, self.pt:oh - self.pb, self.pl:ow - self.pr]
        elif self.out_w > 0 and self.out_h > 0:
            wcut = ow - self.out_w
            hcut = oh - self.out_h
            if -233 in (self.pl, self.pr, self.pt, self.pb):
                t, l = hcut // 2, wcut // 2
            elif -234 in (self.pl, self.pr, self.pt, self.pb):
                t, l = hcut - hcut // 2, wcut - wcut // 2
            else:
                t, l = None, None  # ncnn leaves the blob uncut in this case (unconfirmed)
            if t is not None:
                y = y[:, t:t + self.out_h, l:l + self.out_w]
        return [y]


class DeconvolutionDepthWiseL(DeconvolutionL):
    def __init__(self, ld):
        super().__init__(ld)
        self.group = self.pd.get_int(7, 1)


class InnerProductL(Layer):
    def __init__(self, ld):
        super().__init__(ld)
        pd = self.pd
        self.num_output = pd.get_int(0, 0)
        self.bias_term = pd.get_int(1, 0)
        self.wsize = pd.get_int(2, 0)
        if pd.get_int(8, 0):
            raise OracleError("%s: int8 innerproduct not supported" % ld.name)
        self.act = pd.get_int(9, 0)
        self.act_params = [float(v) for v in pd.get_array(10)]

    def load_model(self, mb):
        self.weight = mb.load(self.wsize, 0)
        self.bias = mb.load(self.num_output, 1) if self.bias_term else None

    def forward(self, inputs):
        x = inputs[0]
        if x.dim() == 2 and x.shape[1] * self.num_output != self.wsize:
            raise OracleError("%s: 2-D (gemm-style) InnerProduct not supported" % self.ld.name)
        v = x.reshape(-1)  # flatten in c,h,w order
        W = _t(self.weight).reshape(self.num_output, v.shape[0])
        y = W @ v
        if self.bias is not None:
            y = y + _t(self.bias)
        return [activation(y, self.act, self.act_params)]


class PReLUL(Layer):
    def __init__(self, ld):
        super().__init__(ld)
        self.num_slope = self.pd.get_int(0, 0)

    def load_model(self, mb):
        self.slope = mb.load(self.num_slope, 1)

    def forward(self, inputs):
        x = inputs[0]
        s = _t(self.slope)
        if x.dim() == 3:
            s = s.view(-1, 1, 1) if self.num_slope > 1 else s.view(1, 1, 1)
        elif x.dim() == 2:
            s = s.view(-1, 1) if self.num_slope > 1 else s.view(1, 1)
        else:
            s = s if self.num_slope > 1 else s.view(1)
        return [torch.where(x < 0, x * s, x)]


class ReLUL(Layer):
    def forward(self, inputs):
        slope = self.pd.get_float(0, 0.0)
        x = inputs[0]
        return [torch.where(x < 0, x * slope, x)]


class SigmoidL(Layer):
    def forward(self, inputs):
        return [activation(inputs[0], 4, [])]


class ClipL(Layer):
    def forward(self, inputs):
        return [torch.clamp(inputs[0], min=self.pd.get_float(0, -3.4e38), max=self.pd.get_float(1, 3.4e38))]


class BatchNormL(Layer):
    def load_model(self, mb):
        c = self.pd.get_int(0, 0)
        self.eps = self.pd.get_float(1, 0.0)
        self.slope = mb.load(c, 1)
        self.mean = mb.load(c, 1)
        self.var = mb.load(c, 1)
        self.bias = mb.load(c, 1)

    def forward(self, inputs):
        x = inputs[0]
        a = _t(self.bias) - _t(self.slope) * _t(self.mean) / torch.sqrt(_t(self.var) + self.eps)
        b = _t(self.slope) / torch.sqrt(_t(self.var) + self.eps)
        shp = (-1,) + (1,) * (x.dim() - 1)
        return [x * b.view(shp) + a.view(shp)]


class ConcatL(Layer):
    def forward(self, inputs):
        dims = inputs[0].dim()
        axis = self.pd.get_int(0, 0)
        if axis < 0:
            axis += dims
        return [torch.cat(inputs, dim=axis)]


class EltwiseL(Layer):
    def forward(self, inputs):
        op = self.pd.get_int(0, 0)
        coeffs = [float(c) for c in self.pd.get_array(1)]
        if op == 0:
            y = inputs[0]
            for t in inputs[1:]:
                y = y * t
        elif op == 1:
            if coeffs:
                y = inputs[0] * coeffs[0]
                for i, t in enumerate(inputs[1:], 1):
                    y = y + t * coeffs[i]
            else:
                y = inputs[0]
                for t in inputs[1:]:
                    y = y + t
        elif op == 2:
            y = inputs[0]
            for t in inputs[1:]:
                y = torch.maximum(y, t)
        else:
            raise OracleError("Eltwise op_type %d" % op)
        return [y]


def _binop(op, a, b):
    if op == 0:
        return a + b
    if op == 1:
        return a - b
    if op == 2:
        return a * b
    if op == 3:
        return a / b
    if op == 4:
        return torch.maximum(a, b) if torch.is_tensor(b) else torch.clamp(a, min=b)
    if op == 5:
        return torch.minimum(a, b) if torch.is_tensor(b) else torch.clamp(a, max=b)
    if op == 6:
        return torch.pow(a, b)
    if op == 7:
        return b - a
    if op == 8:
        return b / a
    if op == 9:
        return torch.pow(b, a) if torch.is_tensor(b) else torch.pow(torch.full_like(a, b), a)
    if op == 10:
        bb = b if torch.is_tensor(b) else torch.full_like(a, b)
        return torch.atan2(a, bb)
    if op == 11:
        bb = b if torch.is_tensor(b) else torch.full_like(a, b)
        return torch.atan2(bb, a)
    raise OracleError("BinaryOp op_type %d" % op)


def _expand_to(x, outdims, other):
    """ncnn rank expansion for broadcasting: a 1-D blob whose length equals
    the channel count of a 3-D partner is per-channel; otherwise align the
    trailing (w) axis."""
    if x.dim() == outdims:
        return x
    if x.dim() == 1 and outdims == 3:
        if x.shape[0] == other.shape[0] and x.shape[0] != 1:
            return x.view(-1, 1, 1)
        return x.view(1, 1, -1)
    if x.dim() == 1 and outdims == 2:
        if x.shape[0] == other.shape[0] and x.shape[0] != 1:
            return x.view(-1, 1)
        return x.view(1, -1)
    if x.dim() == 2 and outdims == 3:
        raise OracleError("BinaryOp 2-D with 3-D broadcasting is not implemented in the oracle")
    return x


class BinaryOpL(Layer):
    def forward(self, inputs):
        op = self.pd.get_int(0, 0)
        with_scalar = self.pd.get_int(1, 0)
        if with_scalar or len(inputs) == 1:
            b = self.pd.get_float(2, 0.0)
            return [_binop(op, inputs[0], b)]
        a, b = inputs[0], inputs[1]
        if b.numel() == 1 and a.numel() != 1:
            return [_binop(op, a, b.reshape([1] * a.dim()))]
        if a.numel() == 1 and b.numel() != 1:
            return [_binop(op, a.reshape([1] * b.dim()), b)]
        outdims = max(a.dim(), b.dim())
        a2 = _expand_to(a, outdims, b)
        b2 = _expand_to(b, outdims, a)
        return [_binop(op, a2, b2)]


class InterpL(Layer):
    def forward(self, inputs):
        pd = self.pd
        rt = pd.get_int(0, 0)
        hsc = pd.get_float(1, 1.0)
        wsc = pd.get_float(2, 1.0)
        oh = pd.get_int(3, 0)
        ow = pd.get_int(4, 0)
        if pd.get_int(5, 0):
            raise OracleError("Interp dynamic_target_size not supported")
        ac = pd.get_int(6, 0)
        x = inputs[0]
        if x.dim() != 3:
            raise OracleError("Interp on %d-D blob not supported" % x.dim())
        C, H, W = x.shape
        outw, outh = ow, oh
        if outw == 0 or outh == 0:
            # ncnn: outw = (int)(w * width_scale) with float32 arithmetic
            outw = int(np.float32(W) * np.float32(wsc))
            outh = int(np.float32(H) * np.float32(hsc))
        if outh == H and outw == W:
            return [x]
        hs = np.float32(H) / np.float32(outh) if oh else np.float32(1.0) / np.float32(hsc)
        ws = np.float32(W) / np.float32(outw) if ow else np.float32(1.0) / np.float32(wsc)
        return [ncnn_interp_3d(x, rt, outh, outw, ac, hs, ws)]


class PixelShuffleL(Layer):
    def forward(self, inputs):
        r = self.pd.get_int(0, 1)
        mode = self.pd.get_int(1, 0)
        x = inputs[0]
        C, H, W = x.shape
        oc = C // (r * r)
        if mode == 0:
            # q = p*r*r + sh*r + sw  (torch pixel_shuffle / ONNX DepthToSpace CRD)
            y = x.reshape(oc, r, r, H, W)
        else:
            # q = (sh*r + sw)*outc + p  (DCR)
            y = x.reshape(r, r, oc, H, W).permute(2, 0, 1, 3, 4)
        y = y.permute(0, 3, 1, 4, 2).reshape(oc, H * r, W * r)
        return [y]


class PoolingL(Layer):
    def forward(self, inputs):
        pd = self.pd
        ptype = pd.get_int(0, 0)
        glob = pd.get_int(4, 0)
        x = inputs[0]
        if not glob:
            raise OracleError("non-global Pooling not supported by the oracle")
        if x.dim() != 3:
            raise OracleError("global Pooling on %d-D" % x.dim())
        if ptype == 0:
            return [x.amax(dim=(1, 2))]
        return [x.mean(dim=(1, 2))]


class ScaleL(Layer):
    def __init__(self, ld):
        super().__init__(ld)
        self.size = self.pd.get_int(0, 0)
        self.bias_term = self.pd.get_int(1, 0)
        self.one_blob = self.size != -233

    def load_model(self, mb):
        if self.size == -233:
            self.scale = None
            self.bias = None
            return
        self.scale = mb.load(self.size, 1)
        self.bias = mb.load(self.size, 1) if self.bias_term else None

    def forward(self, inputs):
        x = inputs[0]
        if self.size == -233:
            s = inputs[1].reshape(-1)
        else:
            s = _t(self.scale)
        shp = (-1,) + (1,) * (x.dim() - 1)
        y = x * s.view(shp)
        if self.bias is not None:
            y = y + _t(self.bias).view(shp)
        return [y]


class CropL(Layer):
    def __init__(self, ld):
        super().__init__(ld)
        pd = self.pd
        self.woffset = pd.get_int(0, 0)
        self.hoffset = pd.get_int(1, 0)
        self.coffset = pd.get_int(2, 0)
        self.outw = pd.get_int(3, 0)
        self.outh = pd.get_int(4, 0)
        self.outc = pd.get_int(5, 0)
        self.woffset2 = pd.get_int(6, 0)
        self.hoffset2 = pd.get_int(7, 0)
        self.coffset2 = pd.get_int(8, 0)
        self.starts = [int(v) for v in pd.get_array(9)]
        self.ends = [int(v) for v in pd.get_array(10)]
        self.axes = [int(v) for v in pd.get_array(11)]

    def _roi_one(self, shape):
        dims = len(shape)
        c, h, w = (shape if dims == 3 else ((1,) + tuple(shape) if dims == 2 else (1, 1) + tuple(shape)))
        if self.starts and self.ends:
            wo, ho, co = 0, 0, 0
            ow, oh, oc = w, h, c
            axes = list(range(dims)) if not self.axes else [a + dims if a < 0 else a for a in self.axes]
            for i, axis in enumerate(axes):
                st, en = self.starts[i], self.ends[i]
                # map ncnn axis -> (c|h|w) by dims
                name = {1: ["w"], 2: ["h", "w"], 3: ["c", "h", "w"]}[dims][axis]
                size = {"c": c, "h": h, "w": w}[name]
                if st == -233:
                    st = 0
                if en == -233:
                    en = size
                off = st if st >= 0 else size + st
                out = min(size, en if en > 0 else size + en) - off
                if name == "w":
                    wo, ow = off, out
                elif name == "h":
                    ho, oh = off, out
                else:
                    co, oc = off, out
            return wo, ho, co, ow, oh, oc
        wo, ho, co = self.woffset, self.hoffset, self.coffset
        ow, oh, oc = w, h, c
        if dims == 1:
            ow = w - self.woffset - self.woffset2
            if self.outw != -233:
                ow = min(self.outw, ow)
        elif dims == 2:
            if self.hoffset == -233:
                raise OracleError("Crop 2-D hoffset=-233 mode not supported")
            ow = w - self.woffset - self.woffset2
            if self.outw != -233:
                ow = min(self.outw, ow)
            oh = h - self.hoffset - self.hoffset2
            if self.outh != -233:
                oh = min(self.outh, oh)
        else:
            if self.hoffset == -233 or self.coffset == -233:
                raise OracleError("Crop 3-D -233 offset modes not supported")
            ow = w - self.woffset - self.woffset2
            if self.outw != -233:
                ow = min(self.outw, ow)
            oh = h - self.hoffset - self.hoffset2
            if self.outh != -233:
                oh = min(self.outh, oh)
            # NOTE: some ncnn versions compute channels - coffset2 - coffset2 here
            oc = c - self.coffset - self.coffset2
            if self.outc != -233:
                oc = min(self.outc, oc)
        return wo, ho, co, ow, oh, oc

    def forward(self, inputs):
        x = inputs[0]
        dims = x.dim()
        if len(inputs) >= 2:
            ref = inputs[1]
            if self.woffset == -233:
                p = [int(v) for v in ref.reshape(-1).tolist()]
                wo, ho, co, ow, oh, oc = p[0], p[1], p[2], p[3], p[4], p[5]
            else:
                # ncnn: _outw = ref.w, _outh = ref.h (1 for a 1-D ref),
                # _outc = ref.c if ref is 3-D else bottom channels
                wo, ho, co = self.woffset, self.hoffset, self.coffset
                if ref.dim() == 3:
                    oc, oh, ow = ref.shape
                elif ref.dim() == 2:
                    oh, ow = ref.shape
                    oc = x.shape[0] if dims == 3 else 1
                else:
                    ow = ref.shape[0]
                    oh = 1
                    oc = x.shape[0] if dims == 3 else 1
        else:
            wo, ho, co, ow, oh, oc = self._roi_one(tuple(x.shape))
        if dims == 1:
            y = x[wo:wo + ow]
        elif dims == 2:
            y = x[ho:ho + oh, wo:wo + ow]
        else:
            y = x[co:co + oc, ho:ho + oh, wo:wo + ow]
        if min(y.shape) <= 0 or (dims == 3 and (y.shape[1] != oh or y.shape[2] != ow or y.shape[0] != oc)):
            raise OracleError("%s: crop roi out of range: in %s roi w%d+%d h%d+%d c%d+%d"
                              % (self.ld.name, tuple(x.shape), wo, ow, ho, oh, co, oc))
        return [y]


LAYER_TYPES = {
    "Input": InputL,
    "Split": SplitL,
    "Convolution": ConvolutionL,
    "ConvolutionDepthWise": ConvolutionDepthWiseL,
    "Deconvolution": DeconvolutionL,
    "DeconvolutionDepthWise": DeconvolutionDepthWiseL,
    "InnerProduct": InnerProductL,
    "PReLU": PReLUL,
    "ReLU": ReLUL,
    "Sigmoid": SigmoidL,
    "Clip": ClipL,
    "BatchNorm": BatchNormL,
    "Concat": ConcatL,
    "Eltwise": EltwiseL,
    "BinaryOp": BinaryOpL,
    "Interp": InterpL,
    "PixelShuffle": PixelShuffleL,
    "Pooling": PoolingL,
    "Scale": ScaleL,
    "Crop": CropL,
}


class Net:
    def __init__(self, param_path, bin_path):
        self.layer_defs = parse_param(param_path)
        self.layers = []
        for ld in self.layer_defs:
            cls = LAYER_TYPES.get(ld.type)
            if cls is None:
                raise OracleError("layer type %s (%s) not supported" % (ld.type, ld.name))
            self.layers.append(cls(ld))
        mb = ModelBin(bin_path)
        for layer in self.layers:
            layer.load_model(mb)
        self.bin_size = len(mb.data)
        self.bin_consumed = mb.off
        self.bin_stats = mb.stats
        if mb.off != len(mb.data):
            raise OracleError("%s: weights consumed %d of %d bytes" % (bin_path, mb.off, len(mb.data)))
        self.producer = {}
        for i, ld in enumerate(self.layer_defs):
            for t in ld.tops:
                if t in self.producer:
                    raise OracleError("blob %s produced twice" % t)
                self.producer[t] = i

    def input_names(self):
        return [ld.tops[0] for ld in self.layer_defs if ld.type == "Input"]

    def emulate_fp16_storage(self):
        """DIAGNOSTIC ONLY: mimic the Vulkan path of the reference programs
        (use_fp16_storage: weights and every blob stored as float16,
        arithmetic in float32/64). Never used for the oracle's truth."""
        self.fp16 = True
        for layer in self.layers:
            for attr in ("weight", "bias", "slope", "scale"):
                v = getattr(layer, attr, None)
                if isinstance(v, np.ndarray):
                    setattr(layer, attr, v.astype(np.float16).astype(np.float64))

    def run(self, feeds, out_name):
        fp16 = getattr(self, "fp16", False)
        if fp16:
            feeds = {k: v.half().double() for k, v in feeds.items()}
        blobs = dict(feeds)
        for i, (ld, layer) in enumerate(zip(self.layer_defs, self.layers)):
            if ld.type == "Input":
                if ld.tops[0] not in blobs:
                    raise OracleError("input blob %s not fed" % ld.tops[0])
                continue
            ins = [blobs[b] for b in ld.bottoms]
            outs = layer.forward(ins)
            if len(outs) != len(ld.tops):
                raise OracleError("%s: produced %d outputs, want %d" % (ld.name, len(outs), len(ld.tops)))
            for t, o in zip(ld.tops, outs):
                blobs[t] = o.half().double() if fp16 else o
        if out_name not in blobs:
            raise OracleError("output blob %s not produced" % out_name)
        return blobs[out_name]


# ---------------------------------------------------------------------------
# whole-image processing per family
# ---------------------------------------------------------------------------

FAMILY_IO = {
    "realesrgan": ("data", "output"),
    "realcugan": ("in0", "out0"),
    "waifu2x-cunet": ("Input1", "Eltwise4"),
}


def _reflect_index(i, n):
    # reflect-101 fold as in ncnn copy_make_border type 2 and the reference
    # preproc shaders (x = abs(x); x = (n-1) - abs(x - (n-1))); repeated
    # for paddings larger than the image (undefined in the references).
    if n == 1:
        return 0
    while i < 0 or i > n - 1:
        i = abs(i)
        i = (n - 1) - abs(i - (n - 1))
    return i


def pad_image(x, top, bottom, left, right, mode):
    """x: (C,H,W) float64 tensor. mode 'reflect' (reflect-101) or 'replicate'."""
    C, H, W = x.shape
    if mode == "replicate":
        yi = [min(max(i, 0), H - 1) for i in range(-top, H + bottom)]
        xi = [min(max(i, 0), W - 1) for i in range(-left, W + right)]
    else:
        if top >= H or bottom >= H or left >= W or right >= W:
            sys.stderr.write("ncnn_oracle: warning: reflect padding larger than the image "
                             "(undefined in the reference programs); using repeated reflection\n")
        yi = [_reflect_index(i, H) for i in range(-top, H + bottom)]
        xi = [_reflect_index(i, W) for i in range(-left, W + right)]
    return x[:, yi][:, :, xi]


def _family_padding(family, scale, noise):
    """-> (prepadding, parity multiple for the bottom/right extension, pad mode)"""
    if family == "realesrgan":
        return 10, 1, "reflect"
    if family == "realcugan":
        p = {2: 18, 3: 14, 4: 19}[scale]
        mult = 4 if scale in (1, 3) else 2
        return p, mult, "reflect"
    if family == "waifu2x-cunet":
        if noise == -1:
            p = 18
        elif scale == 1:
            p = 28
        else:
            p = 18
        mult = 4 if scale == 1 else 2
        return p, mult, "replicate"
    raise OracleError("unknown family %s" % family)


def bicubic_alpha(alpha, scale):
    """alpha: (H,W) float64 in 0..255 -> ncnn Interp bicubic (type 3) by integer scale."""
    if scale == 1:
        return alpha
    a = alpha.unsqueeze(0)
    H, W = alpha.shape
    y = ncnn_interp_3d(a, 3, H * scale, W * scale, 0)
    return y[0]


def upscale_image(net, family, scale, noise, rgb_u8, alpha_u8=None, verbose=False):
    """rgb_u8: HxWx3 uint8 numpy. Returns (rgb_raw float64 HxWx3 = v*255 before +0.5,
    alpha_raw float64 HxW or None)."""
    in_name, out_name = FAMILY_IO[family]
    H, W, _ = rgb_u8.shape
    x = torch.from_numpy(rgb_u8.astype(np.float64)).permute(2, 0, 1).contiguous() / 255.0
    p, mult, mode = _family_padding(family, scale, noise)
    extra_w = (W + mult - 1) // mult * mult - W
    extra_h = (H + mult - 1) // mult * mult - H
    xp = pad_image(x, p, p + extra_h, p, p + extra_w, mode)
    with torch.no_grad():
        out = net.run({in_name: xp}, out_name)
    if out.dim() != 3 or out.shape[0] != 3:
        raise OracleError("model output has shape %s" % (tuple(out.shape),))
    if family == "realesrgan":
        oy, ox = p * scale, p * scale
    else:
        oy, ox = 0, 0
    need_h, need_w = H * scale, W * scale
    if verbose:
        sys.stderr.write("padded input %s -> model output %s, taking [%d:%d, %d:%d]\n"
                         % (tuple(xp.shape), tuple(out.shape), oy, oy + need_h, ox, ox + need_w))
    if out.shape[1] < oy + need_h or out.shape[2] < ox + need_w:
        raise OracleError("model output %s too small for crop at (%d,%d) size %dx%d"
                          % (tuple(out.shape), oy, ox, need_h, need_w))
    v = out[:, oy:oy + need_h, ox:ox + need_w]
    if family == "realcugan" and scale == 4:
        # realcugan x4 adds the nearest-upsampled (padded, normalised) input
        up = x.repeat_interleave(4, dim=1).repeat_interleave(4, dim=2)
        v = v + up
    rgb_raw = (v * 255.0).permute(1, 2, 0).contiguous().numpy()
    alpha_raw = None
    if alpha_u8 is not None:
        alpha_raw = bicubic_alpha(torch.from_numpy(alpha_u8.astype(np.float64)), scale).numpy()
    return rgb_raw, alpha_raw


def quantize(raw, add_half=True):
    """floor(v + 0.5) clamped to [0,255] (clamp before the integer conversion)."""
    v = raw + 0.5 if add_half else raw
    v = np.clip(v, 0.0, 255.0)
    return np.floor(v).astype(np.uint8)


def load_manifest(model_dir):
    path = os.path.join(model_dir, "manifest.json")
    with open(path) as f:
        m = json.load(f)
    return {e["name"]: e for e in m["models"]}


def load_net(model_dir, name):
    return Net(os.path.join(model_dir, name + ".param"), os.path.join(model_dir, name + ".bin"))


def read_image(path):
    im = Image.open(path)
    im.load()
    mode = im.mode
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        a = np.asarray(im)
        return a[:, :, :3].copy(), a[:, :, 3].copy()
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        raise OracleError("16-bit input not supported by the oracle")
    im = im.convert("RGB")
    return np.asarray(im).copy(), None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", default=os.path.expanduser("~/.cache/tessera/models"))
    ap.add_argument("-n", "--name", required=True)
    ap.add_argument("-i", "--input", required=True)
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--raw", help="write float64 HxWxC (0..255 scale, before +0.5/rounding) .npy")
    ap.add_argument("--alpha-rounding", choices=["round", "trunc"], default="round",
                    help="alpha quantisation: 'round' = floor(a+0.5) (reference GPU path, default); "
                         "'trunc' = (int)a (realcugan/waifu2x CPU path)")
    ap.add_argument("--emulate-fp16-storage", action="store_true",
                    help="DIAGNOSTIC ONLY: round weights and blobs to float16 like the references' Vulkan path")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)

    man = load_manifest(args.model_dir)
    if args.name not in man:
        raise OracleError("model %s not in manifest" % args.name)
    e = man[args.name]
    family, scale, noise = e["family"], int(e["scale"]), int(e["noise"])
    net = load_net(args.model_dir, args.name)
    if args.emulate_fp16_storage:
        net.emulate_fp16_storage()
    rgb, alpha = read_image(args.input)
    rgb_raw, alpha_raw = upscale_image(net, family, scale, noise, rgb, alpha, verbose=args.verbose)
    out = quantize(rgb_raw, True)
    if alpha_raw is not None:
        a8 = quantize(alpha_raw, args.alpha_rounding == "round")
        out = np.concatenate([out, a8[:, :, None]], axis=2)
        Image.fromarray(out, "RGBA").save(args.output)
        raw = np.concatenate([rgb_raw, alpha_raw[:, :, None]], axis=2)
    else:
        Image.fromarray(out, "RGB").save(args.output)
        raw = rgb_raw
    if args.raw:
        np.save(args.raw, raw)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except OracleError as ex:
        sys.stderr.write("ncnn_oracle: error: %s\n" % ex)
        sys.exit(2)
