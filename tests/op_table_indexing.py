"""Op table entries for the shape and indexing ops of autograd_core/ops/indexing.py (see
tests/op_table.py for what an entry holds). Index samples repeat an index wherever the
op accumulates (gather's, index_select's and index_add's gradients, scatter_add), and
scatter's and index_put's non-accumulating samples keep their indices distinct, since
which repeated write wins is unspecified in torch. scatter's src has index's shape here
(torch's backward refuses a larger src); tests/test_indexing_ops.py gradchecks a larger one."""
import numpy as np

from op_table import OpEntry, SAME, Sample, _away_from_zero

_x = _away_from_zero


def _index(*rows):
    return np.array(rows, dtype=np.int64)


def _method(name):
    """torch's Tensor.<name>(*args) for a method with no torch.<name> function."""
    return lambda torch, x, *args, **kwargs: getattr(x, name)(*args, **kwargs)


def _repeat(x, *repeats):
    repeats = tuple(repeats[0]) if len(repeats) == 1 and isinstance(repeats[0], tuple) else repeats
    return np.tile(x.reshape((1,) * (len(repeats) - x.ndim) + x.shape), repeats)


def _gather(x, dim, index):
    out = np.empty(index.shape, dtype=x.dtype)
    for position in np.ndindex(*index.shape):  # the definition, element by element
        source = list(position)
        source[dim] = index[position]
        out[position] = x[tuple(source)]
    return out


def _scatter(x, dim, index, src=None, value=None, add=False):
    out = x.copy()
    for position in np.ndindex(*index.shape):
        target = list(position)
        target[dim] = index[position]
        written = src[position] if src is not None else value
        out[tuple(target)] = out[tuple(target)] + written if add else written
    return out


def _index_add(x, dim, index, source, alpha=1):
    out = np.moveaxis(x.copy(), dim, 0)
    moved = np.moveaxis(source, dim, 0)
    for row, i in enumerate(index):
        out[i] += alpha * moved[row]
    return np.moveaxis(out, 0, dim)


def _masked_scatter(x, mask, source):
    shape = np.broadcast_shapes(x.shape, mask.shape)
    out, mask = np.broadcast_to(x, shape).copy(), np.broadcast_to(mask, shape)
    out[mask] = source.reshape(-1)[:mask.sum()]
    return out


def _index_put(x, indices, values, accumulate=False):
    out = x.copy()
    if accumulate:
        np.add.at(out, indices, values)
    else:
        out[indices] = values
    return out


def _unfold(x, dim, size, step):
    starts = range(0, x.shape[dim] - size + 1, step)
    windows = [np.moveaxis(np.take(x, range(s, s + size), axis=dim), dim, -1) for s in starts]
    return np.stack(windows, axis=dim)


def _unflatten(x, dim, sizes):
    return x.reshape(x.shape[:dim] + tuple(sizes) + x.shape[dim + 1:])


TABLE = {
    "flip": OpEntry(lambda rng: [Sample(_x(rng, 2, 3, 4), (0, 2)), Sample(_x(rng, 3), (0,)),
                                 Sample(_x(rng, 2, 3), (-1,))],
                    lambda x, dims: np.flip(x, dims), torch=SAME),
    "roll": OpEntry(lambda rng: [Sample(_x(rng, 2, 3), 1), Sample(_x(rng, 2, 3, 4), (1, -2), (0, 2)),
                                 Sample(_x(rng, 4), -1, 0)],
                    lambda x, shifts, dims=None: np.roll(x, shifts, dims), torch=SAME),
    "repeat": OpEntry(lambda rng: [Sample(_x(rng, 2, 3), 2, 1), Sample(_x(rng, 3), (2, 1, 2)),
                                   Sample(np.array(_x(rng)), 3),
                                   Sample(_x(rng, 2, 1, 2), 1, 3, 2)],
                      _repeat, torch=_method("repeat")),
    "tile": OpEntry(lambda rng: [Sample(_x(rng, 2, 3), (2,)), Sample(_x(rng, 2, 3), (2, 1, 2))],
                    np.tile, torch=SAME),
    "repeat_interleave": OpEntry(lambda rng: [Sample(_x(rng, 2, 3), 2), Sample(_x(rng, 2, 3), _index(1, 0, 2), dim=1),
                                              Sample(_x(rng, 3, 2), _index(2, 1, 3), 0)],
                                 lambda x, repeats, dim=None: np.repeat(x, repeats, axis=dim), torch=SAME),
    "expand_as": OpEntry(lambda rng: [Sample(_x(rng, 3, 1), np.zeros((2, 3, 4), dtype=np.int64))],
                         lambda x, other: np.broadcast_to(x, other.shape), torch=_method("expand_as")),
    "view_as": OpEntry(lambda rng: [Sample(_x(rng, 2, 6), np.zeros((3, 4), dtype=np.int64))],
                       lambda x, other: x.reshape(other.shape), torch=_method("view_as")),
    "reshape_as": OpEntry(lambda rng: [Sample(_x(rng, 2, 3), np.zeros((6,), dtype=np.int64))],
                          lambda x, other: x.reshape(other.shape), torch=_method("reshape_as")),
    "gather": OpEntry(lambda rng: [Sample(_x(rng, 3, 4), 1, _index([0, 0], [3, 1], [2, 2])),
                                   Sample(_x(rng, 3, 4, 2), 0, _index([[2], [0], [2]], [[1], [1], [0]])),
                                   Sample(_x(rng, 5), 0, _index(4, 0, 4, 1))],
                      _gather, torch=SAME),
    "scatter": OpEntry(lambda rng: [Sample(_x(rng, 3, 4), 1, _index([0, 3], [1, 2]), _x(rng, 2, 2)),
                                    Sample(_x(rng, 3, 4), 0, _index([2, 0, 1], [0, 1, 2]), _x(rng, 2, 3)),
                                    Sample(_x(rng, 3, 4), 0, _index([2, 0, 1]), value=0.5)],
                       _scatter, torch=SAME),
    "scatter_add": OpEntry(lambda rng: [Sample(_x(rng, 3, 4), 1, _index([0, 0, 3], [1, 2, 1]), _x(rng, 2, 3)),
                                        Sample(_x(rng, 3, 4, 2), 0, _index([[2, 2], [0, 2]], [[2, 2], [1, 2]]),
                                               _x(rng, 2, 2, 2))],
                           lambda x, dim, index, src: _scatter(x, dim, index, src, add=True), torch=SAME),
    "index_select": OpEntry(lambda rng: [Sample(_x(rng, 3, 4), 0, _index(2, 0, 2)),
                                         Sample(_x(rng, 2, 3, 4), -1, _index(1)), Sample(_x(rng, 4), 0, _index(3, 3))],
                            lambda x, dim, index: np.take(x, index, axis=dim), torch=SAME),
    "index_add": OpEntry(lambda rng: [Sample(_x(rng, 3, 4), 0, _index(2, 0, 2), _x(rng, 3, 4)),
                                      Sample(_x(rng, 2, 3, 2), 1, _index(1, 1), _x(rng, 2, 2, 2), alpha=0.5)],
                         _index_add, torch=SAME),
    "masked_fill": OpEntry(lambda rng: [Sample(_x(rng, 2, 3), rng.random((2, 3)) > 0.5, 0.5),
                                        Sample(_x(rng, 3), np.array([[True, False, True], [False, False, True]]), -1.0),
                                        Sample(_x(rng, 2, 3), np.array([True, False, True]), np.array(0.3))],
                           lambda x, mask, value: np.where(mask, value, x), torch=SAME),
    "masked_select": OpEntry(lambda rng: [Sample(_x(rng, 2, 3), np.array([[True, False, True], [False, True, True]])),
                                          Sample(_x(rng, 3), np.array([[True, False, True], [False, False, True]]))],
                             lambda x, mask: np.broadcast_to(x, np.broadcast_shapes(x.shape, mask.shape))[
                                 np.broadcast_to(mask, np.broadcast_shapes(x.shape, mask.shape))], torch=SAME),
    "masked_scatter": OpEntry(lambda rng: [Sample(_x(rng, 2, 3), np.array([[True, False, True], [False, True, True]]),
                                                  _x(rng, 2, 4)),
                                           Sample(_x(rng, 3), np.array([[True, False, False], [False, True, True]]),
                                                  _x(rng, 3))],
                              _masked_scatter, torch=SAME),
    "index_put": OpEntry(lambda rng: [Sample(_x(rng, 3, 4), (_index(0, 2), _index(1, 3)), _x(rng, 2)),
                                      Sample(_x(rng, 3, 4), (_index(0, 2, 0),), _x(rng, 1, 4), accumulate=True),
                                      Sample(_x(rng, 3, 4), (_index(1, 2),), _x(rng, 4))],
                         _index_put,
                         torch=lambda torch, x, indices, values, **kwargs: torch.index_put(
                             x, tuple(torch.tensor(i) for i in indices), values, **kwargs)),
    "tril": OpEntry(lambda rng: [Sample(_x(rng, 3, 4)), Sample(_x(rng, 2, 3, 3), 1), Sample(_x(rng, 3, 2), -1)],
                    lambda x, k=0: np.tril(x, k), torch=SAME),
    "triu": OpEntry(lambda rng: [Sample(_x(rng, 3, 4)), Sample(_x(rng, 2, 3, 3), 1), Sample(_x(rng, 3, 2), -1)],
                    lambda x, k=0: np.triu(x, k), torch=SAME),
    "diag": OpEntry(lambda rng: [Sample(_x(rng, 3)), Sample(_x(rng, 3, 4)), Sample(_x(rng, 3), 1),
                                 Sample(_x(rng, 3, 4), -1), Sample(_x(rng, 3, 4), 2)],
                    lambda x, k=0: np.diag(x, k), torch=SAME),
    "diagonal": OpEntry(lambda rng: [Sample(_x(rng, 3, 4)), Sample(_x(rng, 2, 3, 4), offset=1, dim1=2, dim2=0),
                                     Sample(_x(rng, 3, 3, 2), -1, 0, 1)],
                        lambda x, offset=0, dim1=0, dim2=1: np.diagonal(x, offset, dim1, dim2), torch=SAME),
    "trace": OpEntry(lambda rng: [Sample(_x(rng, 3, 4)), Sample(_x(rng, 3, 3))], np.trace, torch=SAME),
    "narrow": OpEntry(lambda rng: [Sample(_x(rng, 3, 4), 1, 1, 2), Sample(_x(rng, 5), 0, -3, 2)],
                      lambda x, dim, start, length: np.take(x, range(start % x.shape[dim],
                                                                     start % x.shape[dim] + length), axis=dim),
                      torch=SAME),
    "unfold": OpEntry(lambda rng: [Sample(_x(rng, 7), 0, 3, 2), Sample(_x(rng, 2, 5, 3), 1, 2, 1),
                                   Sample(_x(rng, 2, 6), -1, 2, 3)],
                      lambda x, dim, size, step: _unfold(x, dim % x.ndim, size, step), torch=_method("unfold")),
    "movedim": OpEntry(lambda rng: [Sample(_x(rng, 2, 3, 4), 0, 2), Sample(_x(rng, 2, 3, 4), (0, 1), (2, 0))],
                       np.moveaxis, torch=SAME),
    "moveaxis": OpEntry(lambda rng: [Sample(_x(rng, 2, 3, 4), -1, 0)], np.moveaxis, torch=SAME),
    "swapaxes": OpEntry(lambda rng: [Sample(_x(rng, 2, 3, 4), 0, 2)], np.swapaxes, torch=SAME),
    "swapdims": OpEntry(lambda rng: [Sample(_x(rng, 2, 3), 1, 0)], np.swapaxes, torch=SAME),
    "unflatten": OpEntry(lambda rng: [Sample(_x(rng, 2, 6), 1, (2, 3)), Sample(_x(rng, 6), 0, (-1, 2))],
                         lambda x, dim, sizes: _unflatten(x, dim, [s if s != -1 else x.shape[dim] // 2 for s in sizes]),
                         torch=SAME),
    "meshgrid": OpEntry(lambda rng: [Sample(_x(rng, 3), _x(rng, 2), indexing="ij"),
                                     Sample(_x(rng, 3), _x(rng, 2), _x(rng, 4), indexing="xy")],
                        lambda *xs, indexing: tuple(np.meshgrid(*xs, indexing=indexing)), torch=SAME),
    "nonzero": OpEntry(lambda rng: [Sample(np.array([[0.0, 1.5, 0.0], [2.0, 0.0, -1.0]])),
                                    Sample(np.array([0, 3, 0, 1])),
                                    Sample(np.array([[0.0, 1.5], [2.0, 0.0]]), as_tuple=True)],
                       lambda x, as_tuple=False: tuple(np.nonzero(x)) if as_tuple else np.argwhere(x),
                       gradcheck=False, keeps_dtype=False, torch=SAME),
}
