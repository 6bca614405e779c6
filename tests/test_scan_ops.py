"""The reductions and scans of autograd_core/ops/scan.py where the op table's smooth samples
do not reach: ties, NaN, zeros, non-differentiable points, dtypes, the (values, indices)
results, argument aliases and bad input. Expected values are written out by hand (as
torch gives them); where torch is installed, the same edge cases are also run through it."""
import math

import numpy as np
import pytest

import autograd_core as ag

NAN, INF = float("nan"), float("inf")


def leaf(values):
    return ag.tensor(np.array(values, dtype=np.float64), requires_grad=True)


def grad_of(function, values):
    """d sum(function(x)) / dx at values (function returns a Tensor or (values, indices))."""
    x = leaf(values)
    out = function(x)
    (out[0] if isinstance(out, tuple) else out).sum().backward()
    return x.grad.data


# -- prod and cumprod with zeros ------------------------------------------------------------
def test_prod_gradient_with_no_one_and_several_zeros():
    np.testing.assert_allclose(grad_of(ag.prod, [2.0, 3.0, 4.0]), [12.0, 8.0, 6.0])
    np.testing.assert_allclose(grad_of(ag.prod, [2.0, 0.0, 4.0]), [0.0, 8.0, 0.0])  # the others' product
    np.testing.assert_allclose(grad_of(ag.prod, [0.0, 3.0, 0.0]), [0.0, 0.0, 0.0])
    # per slice along dim: row 0 no zero, row 1 one zero, row 2 two zeros
    rows = [[1.0, 2.0, 3.0], [5.0, 0.0, 2.0], [0.0, 7.0, 0.0]]
    np.testing.assert_allclose(grad_of(lambda x: x.prod(1), rows),
                               [[6.0, 3.0, 2.0], [0.0, 10.0, 0.0], [0.0, 0.0, 0.0]])


def test_cumprod_gradient_with_zeros():
    # sum(cumprod([0, 2, 0, 3])): d/dx0 = 1 + x1 = 3; nothing after the first zero counts
    np.testing.assert_allclose(grad_of(lambda x: ag.cumprod(x, 0), [0.0, 2.0, 0.0, 3.0]), [3.0, 0.0, 0.0, 0.0])
    # [2, 3, 0, 5]: out = [2, 6, 0, 0]; d/dx0 = 1 + 3 = 4, d/dx1 = 2, d/dx2 = 6 + 6*5 = 36, d/dx3 = 0
    np.testing.assert_allclose(grad_of(lambda x: ag.cumprod(x, 0), [2.0, 3.0, 0.0, 5.0]), [4.0, 2.0, 36.0, 0.0])


def test_prod_cumsum_cumprod_integer_inputs_give_int64_and_dtype_casts():
    ints = ag.tensor(np.array([1, 2, 3], dtype=np.int32))
    assert ag.prod(ints).dtype == np.int64 and ag.prod(ints).item() == 6
    assert ag.cumsum(ag.tensor([True, False, True]), 0).tolist() == [1, 1, 2]
    assert ag.cumsum(ints, 0).dtype == np.int64 and ag.cumprod(ints, 0).dtype == np.int64
    assert ag.prod(ints, dtype="float64").dtype == np.float64
    assert ag.cumsum(ints, dim=0, dtype=ag.float32).dtype == np.float32


def test_sum_dtype_casts_the_input_first_and_keeps_the_gradient():
    x = ag.tensor([1.5, 2.5], dtype="float32", requires_grad=True)
    total = x.sum(dtype="float64")
    assert total.dtype == np.float64 and total.item() == 4.0
    total.backward()
    assert x.grad.dtype == np.float32 and x.grad.tolist() == [1.0, 1.0]
    assert ag.tensor([True, True, False]).sum().dtype == np.int64
    assert ag.tensor([1, 2]).sum(dtype=ag.float32).dtype == np.float32


# -- amax / amin: ties and NaN -----------------------------------------------------------------
def test_amax_amin_split_the_gradient_among_ties():
    np.testing.assert_allclose(grad_of(ag.amax, [1.0, 3.0, 3.0, 2.0]), [0.0, 0.5, 0.5, 0.0])
    np.testing.assert_allclose(grad_of(lambda x: ag.amin(x, 1), [[1.0, 1.0, 1.0], [2.0, 0.0, 5.0]]),
                               [[1 / 3, 1 / 3, 1 / 3], [0.0, 1.0, 0.0]])


def test_amax_propagates_nan_into_its_value_and_its_slice_gradient():
    # as torch's amax/amin: no element equals a NaN result, so the slice's gradient is NaN
    # (max() over all elements instead sends it to the NaNs: reduce.py, unchanged)
    x = leaf([[1.0, NAN, 3.0], [1.0, 2.0, 3.0]])
    out = ag.amax(x, 1)
    assert math.isnan(out.data[0]) and out.data[1] == 3.0
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[NAN, NAN, NAN], [0.0, 0.0, 1.0]])


def test_amax_default_reduces_every_dim_and_keeps_integer_dtypes():
    x = ag.tensor([[1, 5], [7, 2]])
    assert ag.amax(x).item() == 7 and ag.amax(x).dtype == np.int64
    assert ag.amin(x, dim=(0, 1), keepdim=True).shape == (1, 1)
    assert ag.amax(x, axis=0).tolist() == [7, 5]


# -- norm ------------------------------------------------------------------------------------
def test_norm_gradient_at_the_zero_vector_is_the_zero_subgradient():
    for p in (2, "fro", 3, 0.5):
        np.testing.assert_array_equal(grad_of(lambda x: ag.norm(x, p), [0.0, 0.0, 0.0]), [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(grad_of(lambda x: ag.norm(x, 2, dim=1), [[0.0, 0.0], [3.0, 4.0]]),
                                  [[0.0, 0.0], [0.6, 0.8]])
    # p < 1: the zero entries of a non-zero vector get 0, not 0 * inf
    np.testing.assert_array_equal(grad_of(lambda x: ag.norm(x, 0.5), [0.0, 0.0, 1.0]), [0.0, 0.0, 1.0])


def test_norm_p1_inf_zero_values_and_gradients():
    x = [[-2.0, 2.0, 1.0]]
    assert ag.norm(ag.tensor(x), 1).item() == 5.0
    assert ag.norm(ag.tensor(x), INF).item() == 2.0 and ag.norm(ag.tensor(x), -INF).item() == 1.0
    assert ag.norm(ag.tensor([[0.0, 2.0, 0.5]]), 0).item() == 2.0
    np.testing.assert_array_equal(grad_of(lambda t: ag.norm(t, 1), x), [[-1.0, 1.0, 1.0]])
    np.testing.assert_array_equal(grad_of(lambda t: ag.norm(t, INF), x), [[-0.5, 0.5, 0.0]])  # ties share
    np.testing.assert_array_equal(grad_of(lambda t: ag.norm(t, -INF), x), [[0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(grad_of(lambda t: ag.norm(t, 0), x), [[0.0, 0.0, 0.0]])
    assert ag.norm(ag.tensor(np.ones((2, 3))), dim=(0, 1), keepdim=True).shape == (1, 1)


def test_norm_refuses_integers_and_unknown_p():
    with pytest.raises(TypeError, match="norm: got a tensor of dtype int64, expected float32 or float64"):
        ag.norm(ag.tensor([1, 2]))
    with pytest.raises(ValueError, match="norm: got p='nuc'"):
        ag.norm(ag.tensor([1.0, 2.0]), "nuc")
    with pytest.raises(TypeError, match="norm: got p=None"):
        ag.norm(ag.tensor([1.0, 2.0]), None)
    assert ag.norm(ag.tensor([3, 4]), dtype="float64").item() == 5.0  # dtype casts first


# -- logsumexp ---------------------------------------------------------------------------------
def test_logsumexp_is_stable_and_promotes_integers():
    assert ag.logsumexp(ag.tensor([1000.0, 1000.0]), 0).item() == pytest.approx(1000 + math.log(2))
    assert ag.logsumexp(ag.tensor([-INF, -INF]), 0).item() == -INF
    ints = ag.logsumexp(ag.tensor([1, 2]), 0)
    assert ints.dtype == np.float32 and ints.item() == pytest.approx(math.log(math.e + math.e ** 2), rel=1e-6)
    np.testing.assert_allclose(grad_of(lambda x: x.logsumexp(0), [0.0, math.log(3)]), [0.25, 0.75])


# -- any / all / count_nonzero -----------------------------------------------------------------
def test_any_all_count_nonzero_dtypes_and_keepdim():
    x = ag.tensor([[0.0, NAN], [0.0, 0.0]])
    assert x.any().item() is True and x.all().item() is False  # NaN is non-zero
    assert x.any(1).tolist() == [True, False] and x.all(dim=0, keepdim=True).shape == (1, 2)
    assert ag.count_nonzero(x).dtype == np.int64 and ag.count_nonzero(x, 0).tolist() == [0, 1]
    assert ag.any(ag.tensor([1.0]), axis=0, keepdims=True).shape == (1,)
    assert not ag.any(ag.tensor([1.0], requires_grad=True)).requires_grad


# -- cummax / cummin ---------------------------------------------------------------------------
def test_cummax_takes_the_latest_tie_and_propagates_nan():
    values, indices = ag.cummax(ag.tensor([1.0, 3.0, 3.0, NAN, 2.0, NAN]), 0)
    np.testing.assert_array_equal(values.data, [1.0, 3.0, 3.0, NAN, NAN, NAN])
    assert indices.tolist() == [0, 1, 2, 3, 3, 5] and indices.dtype == np.int64
    result = ag.cummin(ag.tensor([1, 0, 0, 2]), dim=0)
    assert result.values.tolist() == [1, 0, 0, 0] and result.indices.tolist() == [0, 1, 2, 2]


def test_cummax_gradient_goes_to_the_index_and_adds_up():
    # running max of [2, 1, 3, 3]: indices [0, 0, 2, 3]
    np.testing.assert_array_equal(grad_of(lambda x: ag.cummax(x, 0), [2.0, 1.0, 3.0, 3.0]), [2.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(grad_of(lambda x: x.cummin(dim=1), [[2.0, 1.0, 1.0, 3.0]]), [[1.0, 1.0, 2.0, 0.0]])


# -- sort / argsort / topk ---------------------------------------------------------------------
def test_sort_is_stable_in_both_directions_and_puts_nan_last():
    x = ag.tensor([1.0, NAN, 0.0, 1.0, 0.0])
    up = ag.sort(x)
    np.testing.assert_array_equal(up.values.data, [0.0, 0.0, 1.0, 1.0, NAN])
    assert up.indices.tolist() == [2, 4, 0, 3, 1]
    down = x.sort(descending=True)
    np.testing.assert_array_equal(down.values.data, [NAN, 1.0, 1.0, 0.0, 0.0])
    assert down.indices.tolist() == [1, 0, 3, 2, 4]
    assert ag.argsort(x, descending=True).tolist() == [1, 0, 3, 2, 4]
    assert ag.argsort(ag.tensor(np.array([3, 0, 3], dtype=np.uint8)), descending=True).tolist() == [0, 2, 1]


def test_sort_and_topk_results_are_tuples_with_named_fields_and_int64_indices():
    x = leaf([[3.0, 1.0, 2.0]])
    result = x.topk(2)
    values, indices = result
    assert isinstance(result, tuple) and result.values is values and result.indices is indices
    assert values.tolist() == [[3.0, 2.0]] and indices.tolist() == [[0, 2]]
    assert indices.dtype == np.int64 and not indices.requires_grad and values.requires_grad
    assert x.topk(1, largest=False).indices.tolist() == [[1]]
    (values * ag.tensor([[10.0, 1.0]])).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[10.0, 0.0, 1.0]])


def test_sort_gradient_is_the_inverse_permutation():
    x = leaf([3.0, 1.0, 2.0])
    (ag.sort(x, descending=True).values * ag.tensor([1.0, 2.0, 3.0])).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [1.0, 3.0, 2.0])


# -- kthvalue / median / mode ------------------------------------------------------------------
def test_median_is_the_lower_middle_value():
    assert ag.median(ag.tensor([4.0, 1.0, 3.0, 2.0])).item() == 2.0
    result = ag.median(ag.tensor([[2.0, 1.0, 2.0, 1.0]]), 1)
    assert result.values.tolist() == [1.0] and result.indices.tolist() == [3]  # as torch's
    assert ag.median(ag.tensor([[5, 1, 3]]), dim=1, keepdim=True).values.tolist() == [[3]]


def test_median_gradients_as_torch():
    # over all elements: split among the elements equal to the median
    np.testing.assert_array_equal(grad_of(ag.median, [1.0, 2.0, 2.0, 3.0]), [0.0, 0.5, 0.5, 0.0])
    # along a dim: all to the returned index
    np.testing.assert_array_equal(grad_of(lambda x: x.median(0), [1.0, 2.0, 2.0, 3.0]), [0.0, 1.0, 0.0, 0.0])


def test_median_of_a_slice_with_nan_is_nan_at_its_first_nan():
    assert math.isnan(ag.median(ag.tensor([1.0, NAN, 0.0])).item())
    result = ag.median(ag.tensor([[1.0, NAN, 0.0, NAN], [1.0, 2.0, 3.0, 0.0]]), 1)
    assert math.isnan(result.values.data[0]) and result.values.data[1] == 1.0
    assert result.indices.tolist() == [1, 0]


def test_kthvalue_and_mode_with_repeated_values():
    result = ag.kthvalue(ag.tensor([1.0, 2.0, 2.0, 2.0, 3.0]), 3)
    assert result.values.item() == 2.0 and result.indices.item() == 2
    # 1 and 3 both occur three times: the smaller value, at its last occurrence
    result = ag.mode(ag.tensor([3.0, 1.0, 3.0, 2.0, 1.0, 3.0, 1.0]))
    assert result.values.item() == 1.0 and result.indices.item() == 6
    rows = ag.mode(ag.tensor([[5, 5, 1], [2, 7, 7]]), dim=1, keepdim=True)
    assert rows.values.tolist() == [[5], [7]] and rows.indices.tolist() == [[1], [2]]
    np.testing.assert_array_equal(grad_of(ag.mode, [2.0, 4.0, 2.0]), [0.0, 0.0, 1.0])


# -- dims, aliases and bad input ---------------------------------------------------------------
def test_axis_and_keepdims_are_aliases_of_dim_and_keepdim():
    x = ag.tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(x.prod(axis=1, keepdims=True).data, x.prod(dim=1, keepdim=True).data)
    np.testing.assert_array_equal(ag.sort(x, axis=0).values.data, ag.sort(x, dim=0).values.data)
    np.testing.assert_array_equal(ag.cumsum(x, axis=1).data, ag.cumsum(x, 1).data)
    assert x.kthvalue(1, axis=0, keepdims=True).values.shape == (1, 3)


def test_empty_tensors_as_in_torch():
    empty = ag.tensor(np.ones((2, 0)))
    assert ag.amax(empty, 0).shape == (0,) and ag.norm(empty, INF, 0).shape == (0,)  # nothing reduced is empty
    assert math.isnan(ag.median(empty).item()) and ag.prod(empty, 1).tolist() == [1.0, 1.0]
    assert ag.logsumexp(empty, 1).tolist() == [-INF, -INF] and ag.norm(empty).item() == 0.0
    assert ag.sort(empty, 1).values.shape == (2, 0) and ag.topk(empty, 0).indices.shape == (2, 0)


def test_zero_dim_tensors_work_as_in_torch():
    x = leaf(2.5)
    assert x.sort().values.shape == () and x.sort().indices.item() == 0
    assert x.cumsum(0).shape == () and x.prod(0).shape == () and x.median(0).values.shape == ()
    x.topk(1).values.backward()
    assert x.grad.item() == 1.0


@pytest.mark.parametrize("call, error, message", [
    (lambda x: ag.prod(x, dim=1, axis=1), TypeError, "prod: got both dim and axis"),
    (lambda x: ag.sort(x, 0, axis=0), TypeError, "sort: got both dim and axis"),
    (lambda x: ag.cumsum(x), TypeError, "cumsum: missing dim"),
    (lambda x: ag.cumprod(x, 2), ValueError, "cumprod: dim 2 is out of range for a tensor with 2 dimensions"),
    (lambda x: ag.prod(x, (0, 1)), TypeError, r"prod: got dim=\(0, 1\), expected an int"),
    (lambda x: ag.topk(x, 4), ValueError, "topk: got k=4, expected 0 <= k <= 3"),
    (lambda x: ag.kthvalue(x, 0, 1), ValueError, "kthvalue: got k=0, expected 1 <= k <= 3"),
    (lambda x: ag.topk(x, 1.5), TypeError, "topk: got k=1.5, expected an int"),
    (lambda x: ag.median(x[:, :0], 1), ValueError, r"median: got an empty tensor of shape \(2, 0\)"),
    (lambda x: ag.amax(x[:0]), ValueError, r"amax: got a tensor of shape \(0, 3\), expected no dimension of size 0"),
    (lambda x: ag.amin(x[:, :0], 1), ValueError, r"amin: got a tensor of shape \(2, 0\), expected no dimension"),
    (lambda x: ag.norm(x[:0], INF), ValueError, r"norm: got a tensor of shape \(0, 3\), expected no dimension"),
    (lambda x: ag.prod(x, dtype="text"), TypeError, "prod: got dtype='text'"),
])
def test_bad_arguments_name_the_op(call, error, message):
    with pytest.raises(error, match=message):
        call(ag.tensor(np.ones((2, 3))))


# -- the same edge cases in torch, where it is installed ---------------------------------------
EDGE_CASES = [
    ("prod", [[2.0, 0.0, 4.0], [0.0, 3.0, 0.0]], lambda m, x: m.prod(x, 1)),
    ("cumprod", [[0.0, 2.0, 0.0, 3.0], [2.0, 3.0, 0.0, 5.0]], lambda m, x: m.cumprod(x, 1)),
    ("amax", [[1.0, 3.0, 3.0], [NAN, 1.0, NAN]], lambda m, x: m.amax(x, 1)),
    ("amin", [[1.0, 1.0, 2.0]], lambda m, x: m.amin(x)),
    ("norm2", [[0.0, 0.0], [3.0, 4.0]], lambda m, x: m.norm(x, 2, 1)),
    ("norm_inf", [[-2.0, 2.0, 1.0]], lambda m, x: m.norm(x, INF, 1)),
    ("norm_half", [[0.0, 0.0, 1.0]], lambda m, x: m.norm(x, 0.5)),
    ("cummax", [[1.0, 3.0, 3.0, NAN, 2.0, NAN]], lambda m, x: m.cummax(x, 1)),
    ("cummin", [[2.0, 1.0, 1.0, 4.0]], lambda m, x: m.cummin(x, 1)),
    ("sort", [[1.0, NAN, 0.0, 1.0, 0.0]], lambda m, x: m.sort(x, descending=True, stable=True)),
    ("median", [[1.0, 2.0, 2.0, 3.0]], lambda m, x: m.median(x)),
    ("median_dim", [[2.0, 1.0, 2.0, 1.0], [1.0, NAN, 0.0, NAN]], lambda m, x: m.median(x, 1)),
    ("mode", [[3.0, 1.0, 3.0, 2.0, 1.0, 3.0, 1.0]], lambda m, x: m.mode(x, 1)),
    ("logsumexp", [[-INF, -INF], [1000.0, 1000.0]], lambda m, x: m.logsumexp(x, 1)),
]


@pytest.mark.parametrize("values, call", [case[1:] for case in EDGE_CASES], ids=[case[0] for case in EDGE_CASES])
def test_edge_cases_match_pytorch(values, call):
    torch = pytest.importorskip("torch")
    ours, theirs = leaf(values), torch.tensor(values, dtype=torch.float64, requires_grad=True)
    got, expected = call(ag, ours), call(torch, theirs)
    got, expected = (tuple(got), tuple(expected)) if isinstance(got, tuple) else ((got,), (expected,))
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g.data, e.detach().numpy())
    weights = np.linspace(0.5, 1.5, got[0].data.size).reshape(got[0].shape)
    (got[0] * ag.tensor(weights)).sum().backward()
    (expected[0] * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-12, atol=0)
