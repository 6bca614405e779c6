"""Op table entries for the convolutions (autograd_core/ops/conv2d.py and convolution.py;
see tests/op_table.py for what an entry says). The references are the definitions
written out in numpy: a sum over kernel positions of shifted, strided input slices
times that position's weight, per group (and its scatter form for the transposed
convolutions), independent of the im2col + GEMM the ops run. PyTorch comparisons move
the channel axis and map weights with ops.convolution.ours_conv_weight_to_torch."""
import itertools

import numpy as np

from op_table import Sample, OpEntry, _away_from_zero

from autograd_core.ops.convolution import ours_conv_weight_to_torch


def _pads(padding, dims, kernel, dilation):
    """((before, after), ...) for an int, dims ints, pairs, 'valid' or stride-1 'same'."""
    if padding == "valid":
        return ((0, 0),) * dims
    if padding == "same":
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in totals)
    if isinstance(padding, int):
        return ((padding, padding),) * dims
    return tuple(p if isinstance(p, tuple) else (p, p) for p in padding)


def _tuple(value, dims):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * dims


def _conv_reference(dims):
    """y[n, o..., j*m + t] = sum over kernel positions q and group-j channels c of
    x_padded[n, o*stride + q*dilation, j*cg + c] * w[q, c, j*m + t]."""
    def reference(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1, activation=None):
        unbatched = x.ndim == dims + 1
        x = x[None] if unbatched else x
        kernel, stride, dilation = w.shape[:dims], _tuple(stride, dims), _tuple(dilation, dims)
        pads = _pads(padding, dims, kernel, dilation)
        padded = np.pad(x, ((0, 0),) + pads + ((0, 0),))
        out = [(padded.shape[1 + i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1 for i in range(dims)]
        cg, m = w.shape[-2], w.shape[-1] // groups
        y = np.zeros([x.shape[0]] + out + [w.shape[-1]])
        for q in itertools.product(*(range(k) for k in kernel)):
            start = [q[i] * dilation[i] for i in range(dims)]
            patch = padded[(slice(None),) + tuple(slice(start[i], start[i] + (out[i] - 1) * stride[i] + 1, stride[i])
                                                  for i in range(dims))]
            for j in range(groups):
                y[..., j * m:(j + 1) * m] += patch[..., j * cg:(j + 1) * cg] @ w[q][:, j * m:(j + 1) * m]
        y = y if bias is None else y + bias
        y = np.maximum(y, 0) if activation == "relu" else y
        return y[0] if unbatched else y
    return reference


def _conv_transpose_reference(dims):
    """Each input cell i scatters x[n, i, :] @ w[q].T (per group) onto output cell
    i*stride + q*dilation of the full output, which is then cropped by padding (and
    extended by output_padding at the end)."""
    def reference(x, w, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
        unbatched = x.ndim == dims + 1
        x = x[None] if unbatched else x
        kernel, stride, dilation = w.shape[:dims], _tuple(stride, dims), _tuple(dilation, dims)
        padding, extra = _tuple(padding, dims), _tuple(output_padding, dims)
        sizes = x.shape[1:-1]
        full = [(sizes[i] - 1) * stride[i] + dilation[i] * (kernel[i] - 1) + 1 + extra[i] for i in range(dims)]
        m, c_out_group = x.shape[-1] // groups, w.shape[-2]
        y = np.zeros([x.shape[0]] + full + [c_out_group * groups])
        for q in itertools.product(*(range(k) for k in kernel)):
            start = [q[i] * dilation[i] for i in range(dims)]
            cells = (slice(None),) + tuple(slice(start[i], start[i] + (sizes[i] - 1) * stride[i] + 1, stride[i])
                                           for i in range(dims))
            for j in range(groups):
                y[cells + (slice(j * c_out_group, (j + 1) * c_out_group),)] += (
                    x[..., j * m:(j + 1) * m] @ w[q][:, j * m:(j + 1) * m].T)
        y = y[(slice(None),) + tuple(slice(padding[i], full[i] - padding[i]) for i in range(dims))]
        y = y if bias is None else y + bias
        return y[0] if unbatched else y
    return reference


def _im2col_reference(x, kernel_size, dilation=1, padding=0, stride=1):
    """Row (n, window) of the result lists x_padded[n, window origin + (a, b)*dilation, c]
    for a, b, c in that order."""
    kernel, dilation, padding, stride = (_tuple(v, 2) for v in (kernel_size, dilation, padding, stride))
    padded = np.pad(x, ((0, 0), (padding[0],) * 2, (padding[1],) * 2, (0, 0)))
    out = [(padded.shape[1 + i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1 for i in range(2)]
    rows = np.zeros((x.shape[0], out[0], out[1], kernel[0], kernel[1], x.shape[3]))
    for i, j, a, b in itertools.product(range(out[0]), range(out[1]), range(kernel[0]), range(kernel[1])):
        rows[:, i, j, a, b] = padded[:, i * stride[0] + a * dilation[0], j * stride[1] + b * dilation[1]]
    return rows.reshape(x.shape[0], out[0] * out[1], -1)


def _col2im_reference(columns, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """The adjoint of _im2col_reference: each entry added back onto the cell it came from."""
    kernel, dilation, padding, stride, size = (_tuple(v, 2) for v in (kernel_size, dilation, padding, stride,
                                                                       output_size))
    channels = columns.shape[2] // (kernel[0] * kernel[1])
    padded = np.zeros((columns.shape[0], size[0] + 2 * padding[0], size[1] + 2 * padding[1], channels))
    out = [(padded.shape[1 + i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1 for i in range(2)]
    windows = columns.reshape(columns.shape[0], out[0], out[1], kernel[0], kernel[1], channels)
    for i, j, a, b in itertools.product(range(out[0]), range(out[1]), range(kernel[0]), range(kernel[1])):
        padded[:, i * stride[0] + a * dilation[0], j * stride[1] + b * dilation[1]] += windows[:, i, j, a, b]
    return padded[:, padding[0]:padding[0] + size[0], padding[1]:padding[1] + size[1]]


# ---- PyTorch's forms: channels first, weights [c_out, c_in/groups, *kernel] ---------------------

def _torch_conv(name, dims):
    def call(torch, x, w, bias=None, *args, activation=None, **kwargs):
        y = getattr(torch.nn.functional, name)(torch.movedim(x, -1, -dims - 1), ours_conv_weight_to_torch(w), bias,
                                               *args, **kwargs)
        y = torch.movedim(y, -dims - 1, -1)
        return torch.relu(y) if activation == "relu" else y
    return call


def _torch_im2col(torch, x, kernel_size, *args, **kwargs):
    columns = torch.nn.functional.unfold(torch.movedim(x, -1, 1), kernel_size, *args, **kwargs)  # [N, C*K, L]
    n, _, windows = columns.shape
    return columns.reshape(n, x.shape[-1], -1, windows).permute(0, 3, 2, 1).reshape(n, windows, -1)


def _torch_col2im(torch, columns, output_size, kernel_size, *args, **kwargs):
    n, windows, features = columns.shape
    positions = int(np.prod(_tuple(kernel_size, 2)))
    channels_first = columns.reshape(n, windows, positions, features // positions).permute(0, 3, 2, 1)
    image = torch.nn.functional.fold(channels_first.reshape(n, features, windows), output_size, kernel_size,
                                     *args, **kwargs)
    return torch.movedim(image, 1, -1)


def _r(rng, *shape):
    return _away_from_zero(rng, *shape)


TABLE = {
    "conv1d": OpEntry(lambda rng: [Sample(_r(rng, 2, 5, 4), _r(rng, 3, 4, 6), _r(rng, 6)),
                                   Sample(_r(rng, 2, 7, 4), _r(rng, 3, 2, 6), stride=2, padding=1, dilation=2,
                                          groups=2),
                                   Sample(_r(rng, 1, 6, 3), _r(rng, 2, 1, 6), _r(rng, 6), padding="same", groups=3),
                                   Sample(_r(rng, 5, 2), _r(rng, 2, 2, 3), None, 1, 1)],  # unbatched, positional
                      _conv_reference(1), torch=_torch_conv("conv1d", 1)),
    "conv2d": OpEntry(lambda rng: [Sample(_r(rng, 2, 5, 4, 2), _r(rng, 3, 2, 2, 3), _r(rng, 3)),
                                   Sample(_r(rng, 1, 5, 5, 1), _r(rng, 3, 3, 1, 2), stride=2, padding=1),
                                   Sample(_r(rng, 2, 4, 4, 2), _r(rng, 2, 2, 2, 3), _r(rng, 3), padding=1,
                                          activation="relu"),
                                   Sample(_r(rng, 2, 5, 4, 4), _r(rng, 2, 3, 2, 6), _r(rng, 6), groups=2,
                                          dilation=(2, 1), padding=(1, 2), stride=(1, 2)),
                                   Sample(_r(rng, 1, 5, 5, 3), _r(rng, 3, 3, 1, 3), padding="same", groups=3,
                                          dilation=2),  # depthwise
                                   Sample(_r(rng, 2, 4, 4, 2), _r(rng, 2, 2, 1, 4), _r(rng, 4), groups=2,
                                          activation="relu")],
                      _conv_reference(2), torch=_torch_conv("conv2d", 2)),
    "conv3d": OpEntry(lambda rng: [Sample(_r(rng, 1, 3, 4, 3, 2), _r(rng, 2, 2, 2, 2, 3), _r(rng, 3)),
                                   Sample(_r(rng, 2, 4, 3, 4, 2), _r(rng, 2, 1, 2, 1, 4), stride=(2, 1, 1), padding=1,
                                          dilation=(1, 2, 1), groups=2)],
                      _conv_reference(3), torch=_torch_conv("conv3d", 3)),
    "conv_transpose1d": OpEntry(lambda rng: [Sample(_r(rng, 2, 4, 4), _r(rng, 3, 3, 4), _r(rng, 3), stride=2, padding=1,
                                                    output_padding=1),
                                             Sample(_r(rng, 2, 3, 4), _r(rng, 2, 3, 4), groups=2, dilation=2,
                                                    output_padding=1),
                                             Sample(_r(rng, 4, 2), _r(rng, 3, 2, 2), None, 3, 2)],  # unbatched
                                _conv_transpose_reference(1), torch=_torch_conv("conv_transpose1d", 1)),
    "conv_transpose2d": OpEntry(lambda rng: [Sample(_r(rng, 2, 3, 4, 2), _r(rng, 3, 3, 3, 2), _r(rng, 3), stride=2,
                                                    padding=1, output_padding=(1, 0)),
                                             Sample(_r(rng, 1, 3, 3, 4), _r(rng, 2, 2, 1, 4), _r(rng, 2), groups=2,
                                                    stride=(1, 2), dilation=(2, 1)),
                                             Sample(_r(rng, 3, 3, 2), _r(rng, 2, 3, 2, 2), stride=2)],  # unbatched
                                _conv_transpose_reference(2), torch=_torch_conv("conv_transpose2d", 2)),
    "conv_transpose3d": OpEntry(lambda rng: [Sample(_r(rng, 1, 2, 3, 2, 4), _r(rng, 2, 2, 2, 1, 4), _r(rng, 2),
                                                    stride=2, padding=(1, 0, 1), groups=2, output_padding=1)],
                                _conv_transpose_reference(3), torch=_torch_conv("conv_transpose3d", 3)),
    "im2col": OpEntry(lambda rng: [Sample(_r(rng, 2, 4, 5, 3), (2, 3)),
                                   Sample(_r(rng, 1, 5, 5, 2), 2, dilation=(1, 2), padding=1, stride=2)],
                      _im2col_reference, torch=_torch_im2col),
    "col2im": OpEntry(lambda rng: [Sample(_r(rng, 2, 6, 12), (3, 4), (2, 2)),
                                   Sample(_r(rng, 1, 9, 8), (4, 5), 2, dilation=1, padding=1, stride=2)],
                      _col2im_reference, torch=_torch_col2im),
}
