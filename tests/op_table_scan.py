"""Op table entries for the reductions and scans of autograd_core/ops/scan.py (see
tests/op_table.py for what an entry says). The references are plain numpy, written
independently of the ops (loops over slices where that is clearer); ties, NaN, zeros and
errors are in tests/test_scan_ops.py."""
import numpy as np

from op_table import Sample, OpEntry, SAME, _away_from_zero, _positive, _distinct


def _along(function, x, dim):
    """function applied to each 1-d slice of x along dim (a 0-d x as one slice of one),
    its results stacked back along dim."""
    slices = np.moveaxis(np.atleast_1d(x), dim, -1)
    flat = slices.reshape(-1, slices.shape[-1])
    results = np.array([function(row) for row in flat])
    return np.moveaxis(results.reshape(slices.shape[:-1] + results.shape[1:]), -1, dim) if results.ndim > 1 \
        else results.reshape(slices.shape[:-1])


def _reduction_reference(function):
    """reference(x, dim=None, keepdim=False) for a numpy reduction taking axis/keepdims."""
    def reference(x, dim=None, keepdim=False, **kwargs):
        return function(x, axis=dim, keepdims=keepdim, **kwargs)
    return reference


def _reduction_samples(values, zeros=False):
    def samples(rng):
        cases = [Sample(np.array(values(rng))), Sample(values(rng, 2, 3, 4), 1), Sample(values(rng, 2, 3), dim=0, keepdim=True),
                 Sample(values(rng, 4), dim=-1), Sample(np.array(values(rng)), 0)]
        if zeros:  # one zero and two zeros in a slice: the product's gradient as torch's
            one_zero = values(rng, 2, 3)
            one_zero[0, 1] = 0.0
            two_zeros = values(rng, 3, 4)
            two_zeros[1, 0] = two_zeros[1, 2] = 0.0
            cases += [Sample(one_zero, 1), Sample(one_zero), Sample(two_zeros, dim=1, keepdim=True), Sample(two_zeros)]
        return cases
    return samples


def _logsumexp(x, dim=None, keepdim=False):
    peak = np.max(x, axis=dim, keepdims=True)
    return np.log(np.sum(np.exp(x - peak), axis=dim, keepdims=keepdim)) + (peak if keepdim else np.squeeze(peak, dim))


def _norm(x, p="fro", dim=None, keepdim=False):
    magnitude = np.abs(x)
    if p == "fro" or p == 2:
        return np.sqrt(np.sum(magnitude ** 2, axis=dim, keepdims=keepdim))
    if p == np.inf:
        return np.max(magnitude, axis=dim, keepdims=keepdim)
    if p == -np.inf:
        return np.min(magnitude, axis=dim, keepdims=keepdim)
    return np.sum(magnitude ** p, axis=dim, keepdims=keepdim) ** (1.0 / p)


def _norm_samples(rng):
    return [Sample(_away_from_zero(rng, 2, 3)), Sample(_away_from_zero(rng, 2, 3), 1, 1),
            Sample(_away_from_zero(rng, 2, 3, 2), 2, (0, 2), True), Sample(_distinct(rng, 3, 4), np.inf, 1),
            Sample(_distinct(rng, 3, 4), -np.inf, dim=0, keepdim=True), Sample(_away_from_zero(rng, 4), 3),
            Sample(_positive(rng, 2, 3), 0.5, dim=1), Sample(_away_from_zero(rng, 2, 3, 4), "fro", (1, 2)),
            Sample(np.array(_away_from_zero(rng)), 2)]


def _scan_samples(values, zeros=False):
    def samples(rng):
        cases = [Sample(values(rng, 2, 3), 1), Sample(values(rng, 2, 3, 2), dim=0), Sample(values(rng, 4), -1),
                 Sample(np.array(values(rng)), 0)]
        if zeros:  # the first zero and the ones after it: cumprod's gradient with zeros
            with_zeros = values(rng, 2, 5)
            with_zeros[0, 1] = with_zeros[0, 3] = with_zeros[1, 0] = 0.0
            cases += [Sample(with_zeros, 1), Sample(np.array([2.0, 0.5, 0.0]), 0)]
        return cases
    return samples


def _cumulative_extreme(better):
    """(values, indices) of the running extreme: the latest index of a value at least as good."""
    def one(row):
        indices = []
        for i in range(len(row)):
            best = 0
            for j in range(1, i + 1):
                if better(row[j], row[best]) or row[j] == row[best]:
                    best = j
            indices.append(best)
        return np.array(indices)

    def reference(x, dim):
        indices = _along(one, x, dim).reshape(x.shape).astype(np.int64)
        return np.take_along_axis(np.atleast_1d(x), np.atleast_1d(indices), dim).reshape(x.shape), indices
    return reference


def _sort(x, dim=-1, descending=False):
    indices = np.argsort(np.atleast_1d(x), axis=dim)
    if descending:
        indices = np.flip(indices, dim)
    return np.take_along_axis(np.atleast_1d(x), indices, dim).reshape(x.shape), indices.reshape(x.shape)


def _topk(x, k, dim=-1, largest=True):
    values, indices = _sort(x, dim, descending=largest)
    if x.ndim == 0:
        return values, indices
    return np.take(values, range(k), axis=dim), np.take(indices, range(k), axis=dim)


def _selected(position):
    """(values, indices) of the element at sorted position(n) along dim, dim removed or kept."""
    def reference(x, dim=-1, keepdim=False, **kwargs):
        values, indices = _sort(x, dim)
        if x.ndim == 0:
            return values, indices
        at = position(x.shape[dim], **kwargs)
        return (np.take(values, [at] if keepdim else at, axis=dim), np.take(indices, [at] if keepdim else at, axis=dim))
    return reference


def _kthvalue(x, k, dim=-1, keepdim=False):
    return _selected(lambda n, k: k - 1)(x, dim, keepdim, k=k)


def _median(x, dim=None, keepdim=False):
    if dim is None:
        return np.sort(x.reshape(-1))[(x.size - 1) // 2]
    return _selected(lambda n: (n - 1) // 2)(x, dim, keepdim)


def _select_samples(rng):
    return [Sample(_distinct(rng, 2, 5), 1), Sample(_distinct(rng, 3, 2, 4), dim=0, keepdim=True),
            Sample(_distinct(rng, 4)), Sample(_distinct(rng, 2, 3), -2)]


TABLE = {
    "prod": OpEntry(_reduction_samples(_away_from_zero, zeros=True), _reduction_reference(np.prod), torch=SAME),
    "any": OpEntry(lambda rng: [Sample(np.array([[0.0, 0.5], [0.0, 0.0]])), Sample(np.array([[0.0, 0.5], [0.0, 0.0]]), 1),
                                Sample(np.array([[True, False], [False, False]]), dim=0, keepdim=True),
                                Sample(np.array([0, 3, 0])), Sample(np.array(0.0))],
                   _reduction_reference(np.any), gradcheck=False, keeps_dtype=False, torch=SAME),
    "all": OpEntry(lambda rng: [Sample(np.array([[1.0, 0.5], [0.0, 2.0]])), Sample(np.array([[1.0, 0.5], [0.0, 2.0]]), 1),
                                Sample(np.array([[True, False], [True, True]]), dim=0, keepdim=True),
                                Sample(np.array([1, 3, 2])), Sample(np.array(1.0))],
                   _reduction_reference(np.all), gradcheck=False, keeps_dtype=False, torch=SAME),
    "count_nonzero": OpEntry(lambda rng: [Sample(np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]])),
                                          Sample(np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]]), 0),
                                          Sample(np.array([[[1, 0], [0, 2]]]), dim=(1, 2)),
                                          Sample(np.array([True, False, True]))],
                             lambda x, dim=None: np.count_nonzero(x, axis=dim) * np.int64(1),
                             gradcheck=False, keeps_dtype=False, torch=SAME),
    "amax": OpEntry(lambda rng: [Sample(_distinct(rng, 2, 3, 4)), Sample(_distinct(rng, 2, 3, 4), 1),
                                 Sample(_distinct(rng, 2, 3, 4), (0, 2), keepdim=True), Sample(_distinct(rng, 3), dim=-1),
                                 Sample(np.array(_distinct(rng)))],
                    lambda x, dim=None, keepdim=False: np.max(x, axis=dim, keepdims=keepdim), torch=SAME),
    "amin": OpEntry(lambda rng: [Sample(_distinct(rng, 2, 3, 4)), Sample(_distinct(rng, 2, 3, 4), 1),
                                 Sample(_distinct(rng, 2, 3, 4), (0, 2), keepdim=True), Sample(_distinct(rng, 3), dim=-1),
                                 Sample(np.array(_distinct(rng)))],
                    lambda x, dim=None, keepdim=False: np.min(x, axis=dim, keepdims=keepdim), torch=SAME),
    "logsumexp": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 2, 3), 1), Sample(_away_from_zero(rng, 2, 3, 2), (0, 2)),
                                      Sample(_away_from_zero(rng, 4) * 400, dim=0, keepdim=True),  # exp would overflow
                                      Sample(np.array(_away_from_zero(rng)), 0)],
                         _logsumexp, torch=SAME),
    "norm": OpEntry(_norm_samples, _norm, torch=SAME),
    "cumsum": OpEntry(_scan_samples(_away_from_zero), lambda x, dim: np.cumsum(np.atleast_1d(x), axis=dim).reshape(x.shape),
                      torch=SAME),
    "cumprod": OpEntry(_scan_samples(_away_from_zero, zeros=True),
                       lambda x, dim: np.cumprod(np.atleast_1d(x), axis=dim).reshape(x.shape), torch=SAME),
    "cummax": OpEntry(_scan_samples(_distinct), _cumulative_extreme(np.greater), torch=SAME),
    "cummin": OpEntry(_scan_samples(_distinct), _cumulative_extreme(np.less), torch=SAME),
    "sort": OpEntry(lambda rng: [Sample(_distinct(rng, 2, 5)), Sample(_distinct(rng, 3, 2, 4), dim=0, descending=True),
                                 Sample(_distinct(rng, 4), 0, True), Sample(np.array(_distinct(rng)))], _sort, torch=SAME),
    "argsort": OpEntry(lambda rng: [Sample(_distinct(rng, 2, 5)), Sample(_distinct(rng, 3, 2, 4), dim=0, descending=True),
                                    Sample(np.array([3, 1, 2]))],
                       lambda x, dim=-1, descending=False: _sort(x, dim, descending)[1],
                       gradcheck=False, keeps_dtype=False, torch=SAME),
    "topk": OpEntry(lambda rng: [Sample(_distinct(rng, 2, 5), 3), Sample(_distinct(rng, 3, 2, 4), 2, dim=0),
                                 Sample(_distinct(rng, 4), 2, largest=False), Sample(_distinct(rng, 2, 3), 0, 1),
                                 Sample(np.array(_distinct(rng)), 1)], _topk, torch=SAME),
    "kthvalue": OpEntry(lambda rng: [Sample(_distinct(rng, 2, 5), 2), Sample(_distinct(rng, 3, 2, 4), 3, dim=0, keepdim=True),
                                     Sample(_distinct(rng, 4), 4), Sample(_distinct(rng, 2, 3), 1, -2),
                                     Sample(np.array(_distinct(rng)), 1)], _kthvalue, torch=SAME),
    "median": OpEntry(lambda rng: [Sample(_distinct(rng, 2, 5)), Sample(_distinct(rng, 2, 2)), Sample(np.array(_distinct(rng)))]
                      + _select_samples(rng), _median, torch=SAME),
    # distinct values: each counts once, so the mode is the smallest (repeats: tests/test_scan_ops.py)
    "mode": OpEntry(_select_samples, _selected(lambda n: 0), torch=SAME),
}
