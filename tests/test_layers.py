"""cnncourse.layers against torch: values and gradients of conv2d, im2col, col2im and pooling.

Every from-scratch function is compared with its ``torch.nn.functional``
counterpart over a grid of strides, paddings, dilations and shapes (values and
the gradients of every input), checked with ``gradcheck`` in float64, and made
to fail on bad input with a message that says how to fix it.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnncourse.layers import AvgPool2d, Conv2d, MaxPool2d, avg_pool2d, col2im, conv2d, im2col, max_pool2d

IMPLS = ("loops", "im2col")


pytestmark = pytest.mark.usefixtures("one_thread")

# (stride, padding, dilation): ints, pairs, "same" and "valid"
CONV_SETTINGS = [
    (1, 0, 1),
    (2, 0, 1),
    (1, 1, 1),
    ((2, 1), (1, 0), 1),
    (1, (0, 2), (2, 1)),
    (3, 2, 1),
    (2, 1, 2),
    (1, "same", 1),
    (1, "same", (2, 1)),
    (1, "valid", 1),
    (2, "valid", 2),
]

# (batch, in_channels, out_channels, height, width, kernel_h, kernel_w): square and not, odd and even kernels
CONV_SHAPES = [
    (1, 1, 1, 7, 7, 3, 3),
    (3, 2, 4, 8, 6, 2, 3),
    (1, 3, 2, 6, 9, 3, 1),
    (3, 4, 3, 9, 8, 1, 2),
    (2, 3, 5, 9, 7, 4, 4),
]


def settings_id(setting) -> str:
    stride, padding, dilation = setting
    return f"s{stride}-p{padding}-d{dilation}".replace(" ", "")


def shape_id(shape) -> str:
    n, c_in, c_out, h, w, kh, kw = shape
    return f"n{n}-{c_in}to{c_out}-{h}x{w}-k{kh}x{kw}"


def make_conv_inputs(shape, *, bias: bool, dtype=torch.float32, seed: int = 0):
    n, c_in, c_out, h, w, kh, kw = shape
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c_in, h, w, generator=generator, dtype=dtype, requires_grad=True)
    weight = torch.randn(c_out, c_in, kh, kw, generator=generator, dtype=dtype, requires_grad=True)
    b = torch.randn(c_out, generator=generator, dtype=dtype, requires_grad=True) if bias else None
    return x, weight, b


def assert_same_values_and_grads(ours: torch.Tensor, theirs: torch.Tensor, inputs) -> None:
    """Same forward values, and the same gradient of every input for one random upstream gradient."""
    torch.testing.assert_close(ours, theirs)
    upstream = torch.randn(theirs.shape, generator=torch.Generator().manual_seed(1), dtype=theirs.dtype)
    inputs = [t for t in inputs if t is not None]
    our_grads = torch.autograd.grad(ours, inputs, upstream)
    their_grads = torch.autograd.grad(theirs, inputs, upstream)
    for ours_grad, their_grad in zip(our_grads, their_grads):
        torch.testing.assert_close(ours_grad, their_grad)


# --- conv2d -----------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")  # torch's own notice
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("shape", CONV_SHAPES, ids=shape_id)
@pytest.mark.parametrize("setting", CONV_SETTINGS, ids=settings_id)
@pytest.mark.parametrize("impl", IMPLS)
def test_conv2d_matches_torch(impl, setting, shape, bias):
    stride, padding, dilation = setting
    x, weight, b = make_conv_inputs(shape, bias=bias)
    ours = conv2d(x, weight, b, stride, padding, dilation, impl=impl)
    theirs = F.conv2d(x, weight, b, stride, padding, dilation)
    assert_same_values_and_grads(ours, theirs, (x, weight, b))


@pytest.mark.parametrize("impl", IMPLS)
def test_conv2d_accepts_channels_last_and_keywords(impl):
    x, weight, b = make_conv_inputs((2, 3, 4, 6, 5, 3, 3), bias=True)
    x_nhwc = x.detach().to(memory_format=torch.channels_last).requires_grad_()
    ours = conv2d(x_nhwc, weight, bias=b, stride=(1, 2), padding=1, impl=impl)
    theirs = F.conv2d(x_nhwc, weight, bias=b, stride=(1, 2), padding=1)
    assert_same_values_and_grads(ours, theirs, (x_nhwc, weight, b))


def test_conv2d_defaults_to_the_loops():
    x, weight, _ = make_conv_inputs((1, 2, 3, 5, 5, 3, 3), bias=False)
    torch.testing.assert_close(conv2d(x, weight), F.conv2d(x, weight))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    ("shape", "stride", "padding", "dilation"),
    [
        ((2, 2, 3, 4, 3, 2, 3), 1, "same", 1),  # even kernel: the extra padding goes bottom and right
        ((1, 2, 2, 5, 4, 3, 2), (2, 1), (1, 2), (1, 2)),
        ((2, 1, 2, 4, 4, 3, 3), 1, 0, 1),
    ],
    ids=["same-even", "strided-dilated", "plain"],
)
def test_conv2d_gradcheck(impl, shape, stride, padding, dilation):
    x, weight, b = make_conv_inputs(shape, bias=True, dtype=torch.float64)

    def f(x, weight, b):
        return conv2d(x, weight, b, stride, padding, dilation, impl=impl)

    assert torch.autograd.gradcheck(f, (x, weight, b))


@pytest.mark.parametrize("impl", IMPLS)
def test_conv2d_follows_autocast_like_torch(impl):
    # fit(amp=True) runs models under autocast: a bfloat16 activation meets a float32 weight
    def stack(conv):
        torch.manual_seed(0)
        return nn.Sequential(conv(3, 4, 3, padding=1), nn.ReLU(), conv(4, 2, 3, padding=1))

    ours, theirs = stack(lambda *a, **k: Conv2d(*a, **k, impl=impl)), stack(nn.Conv2d)
    x = torch.randn(2, 3, 6, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, y_torch = ours(x), theirs(x)
    assert y.dtype == y_torch.dtype == torch.bfloat16
    torch.testing.assert_close(y, y_torch, rtol=2e-2, atol=1e-2)
    y.float().sum().backward()
    y_torch.float().sum().backward()
    assert ours[0].weight.grad.dtype == torch.float32
    torch.testing.assert_close(ours[0].weight.grad, theirs[0].weight.grad, rtol=5e-2, atol=0.2)


def test_im2col_backward_skips_what_is_not_needed():
    x, weight, b = make_conv_inputs((1, 2, 3, 5, 5, 3, 3), bias=True)
    x.requires_grad_(False)
    conv2d(x, weight, b, impl="im2col").sum().backward()
    assert x.grad is None and weight.grad is not None and b.grad is not None


# --- im2col and col2im ------------------------------------------------------------------------

# (kernel_size, stride, padding, dilation)
UNFOLD_SETTINGS = [
    (3, 1, 0, 1),
    ((2, 3), 1, 1, 1),
    (3, 2, 1, 1),
    ((3, 2), (2, 1), (0, 1), (1, 2)),
    (2, 3, 2, 2),
    (1, 1, 0, 1),
]


@pytest.mark.parametrize("setting", UNFOLD_SETTINGS, ids=str)
@pytest.mark.parametrize("size", [(1, 1, 7, 7), (3, 2, 6, 9)], ids=str)
def test_im2col_matches_unfold(size, setting):
    kernel_size, stride, padding, dilation = setting
    x = torch.randn(size, requires_grad=True)
    ours = im2col(x, kernel_size, stride, padding, dilation)
    theirs = F.unfold(x, kernel_size, dilation=dilation, padding=padding, stride=stride)
    assert_same_values_and_grads(ours, theirs, (x,))


@pytest.mark.parametrize("setting", UNFOLD_SETTINGS, ids=str)
@pytest.mark.parametrize("size", [(1, 1, 7, 7), (3, 2, 6, 9)], ids=str)
def test_col2im_matches_fold(size, setting):
    kernel_size, stride, padding, dilation = setting
    n, c, h, w = size
    rows = im2col(torch.zeros(size), kernel_size, stride, padding, dilation).shape[1:]
    cols = torch.randn(n, *rows, requires_grad=True)
    ours = col2im(cols, (h, w), kernel_size, stride, padding, dilation)
    theirs = F.fold(cols, (h, w), kernel_size, dilation=dilation, padding=padding, stride=stride)
    assert_same_values_and_grads(ours, theirs, (cols,))


@pytest.mark.parametrize("setting", UNFOLD_SETTINGS, ids=str)
def test_col2im_is_the_adjoint_of_im2col(setting):
    # <im2col(x), cols> == <x, col2im(cols)>: why col2im is im2col's backward pass
    kernel_size, stride, padding, dilation = setting
    x = torch.randn(2, 3, 7, 6, dtype=torch.float64)
    cols = torch.randn_like(im2col(x, kernel_size, stride, padding, dilation))
    lhs = (im2col(x, kernel_size, stride, padding, dilation) * cols).sum()
    rhs = (x * col2im(cols, (7, 6), kernel_size, stride, padding, dilation)).sum()
    torch.testing.assert_close(lhs, rhs)


def test_im2col_and_col2im_gradcheck():
    x = torch.randn(2, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: im2col(x, (2, 3), (2, 1), 1, (1, 2)), (x,))
    cols = torch.randn(2, 12, 12, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda c: col2im(c, (5, 4), (2, 3), (1, 1), (1, 0), 1), (cols,))


# --- pooling ----------------------------------------------------------------------------------

POOLS = {"max": (max_pool2d, F.max_pool2d), "avg": (avg_pool2d, F.avg_pool2d)}

# (kernel_size, stride, padding)
POOL_SETTINGS = [
    (2, None, 0),
    (3, None, 1),
    (3, 2, 1),
    ((2, 3), (1, 2), (1, 1)),
    (3, 1, 0),
    (4, 3, 2),
    ((3, 2), None, (1, 0)),
]


@pytest.mark.parametrize("setting", POOL_SETTINGS, ids=str)
@pytest.mark.parametrize("size", [(1, 1, 7, 7), (3, 2, 8, 5)], ids=str)
@pytest.mark.parametrize("kind", POOLS)
def test_pool_matches_torch(kind, size, setting):
    ours_fn, torch_fn = POOLS[kind]
    kernel_size, stride, padding = setting
    x = torch.randn(size, requires_grad=True)  # continuous values: no ties in max pooling
    ours = ours_fn(x, kernel_size, stride, padding)
    theirs = torch_fn(x, kernel_size, stride, padding)
    assert_same_values_and_grads(ours, theirs, (x,))


@pytest.mark.parametrize("kind", POOLS)
def test_pool_gradcheck(kind):
    pool = POOLS[kind][0]
    x = torch.randn(2, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: pool(x, (3, 2), (2, 1), (1, 1)), (x,))


def test_avg_pool_counts_padding_zeros():
    x = torch.ones(1, 1, 2, 2)
    # each 3x3 window over the padded 4x4 holds the 4 ones and 5 zeros
    torch.testing.assert_close(avg_pool2d(x, 3, stride=1, padding=1), torch.full((1, 1, 2, 2), 4 / 9))


def test_max_pool_never_picks_padding():
    x = -torch.ones(1, 1, 2, 2)
    torch.testing.assert_close(max_pool2d(x, 2, stride=1, padding=1), -torch.ones(1, 1, 3, 3))


# --- modules ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"in_channels": 3, "out_channels": 8, "kernel_size": 3, "padding": 1},
        {"in_channels": 2, "out_channels": 4, "kernel_size": (2, 5), "stride": 2, "bias": False},
        {"in_channels": 4, "out_channels": 2, "kernel_size": 3, "padding": "same", "dilation": 2},
    ],
    ids=["3to8", "nobias-2x5", "same-dilated"],
)
@pytest.mark.parametrize("impl", IMPLS)
def test_conv2d_module_is_initialised_and_computes_like_nn_conv2d(impl, kwargs):
    torch.manual_seed(0)
    ours = Conv2d(**kwargs, impl=impl)
    torch.manual_seed(0)
    theirs = nn.Conv2d(**kwargs)
    torch.testing.assert_close(ours.weight, theirs.weight, rtol=0, atol=0)
    assert (ours.bias is None) == (theirs.bias is None)
    if ours.bias is not None:
        torch.testing.assert_close(ours.bias, theirs.bias, rtol=0, atol=0)
    x = torch.randn(2, kwargs["in_channels"], 9, 8)
    torch.testing.assert_close(ours(x), theirs(x))


def test_conv2d_module_trains():
    layer = Conv2d(2, 3, 3, padding=1)
    layer(torch.randn(4, 2, 6, 6)).square().mean().backward()
    assert layer.weight.grad.shape == layer.weight.shape and layer.bias.grad.shape == (3,)


def test_conv2d_module_reset_parameters_bound():
    layer = Conv2d(4, 6, (3, 2))
    bound = 1 / math.sqrt(4 * 3 * 2)  # kaiming_uniform_(a=sqrt(5)) and the bias share it
    assert layer.weight.abs().max() <= bound and layer.bias.abs().max() <= bound


def test_module_reprs():
    assert repr(Conv2d(3, 8, 3, padding=1)) == (
        "Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), impl='im2col')"
    )
    assert repr(Conv2d(3, 8, (1, 2), stride=2, dilation=2, bias=False, impl="loops")) == (
        "Conv2d(3, 8, kernel_size=(1, 2), stride=(2, 2), dilation=(2, 2), bias=False, impl='loops')"
    )
    assert repr(Conv2d(1, 1, 3, padding="same")) == (
        "Conv2d(1, 1, kernel_size=(3, 3), stride=(1, 1), padding='same', impl='im2col')"
    )
    assert repr(MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2, padding=0)"
    assert repr(AvgPool2d(3, stride=1, padding=1)) == "AvgPool2d(kernel_size=3, stride=1, padding=1)"


@pytest.mark.parametrize(("ours", "theirs"), [(MaxPool2d, nn.MaxPool2d), (AvgPool2d, nn.AvgPool2d)])
def test_pool_modules_match_torch(ours, theirs):
    x = torch.randn(2, 3, 9, 8)
    torch.testing.assert_close(ours(3, stride=2, padding=1)(x), theirs(3, stride=2, padding=1)(x))
    torch.testing.assert_close(ours((2, 3))(x), theirs((2, 3))(x))


# --- bad input --------------------------------------------------------------------------------

X = torch.randn(1, 3, 4, 4)
W = torch.randn(2, 3, 3, 3)

ERRORS = [
    # (what, call, exception, message)
    ("3-d input", lambda: conv2d(X[0], W), ValueError, r"x must be N x C x H x W, got .*\(3, 4, 4\): add a batch"),
    ("not a tensor", lambda: conv2d([[1.0]], W), TypeError, r"x must be a torch.Tensor, got list"),
    ("int input", lambda: conv2d(X.long(), W), TypeError, r"dtype torch.int64.*use x.float\(\)"),
    ("channels", lambda: conv2d(X, torch.randn(2, 4, 3, 3)),
     ValueError, r"input has 3 channels but weight expects 4: "),
    ("3-d weight", lambda: conv2d(X, W[0]), ValueError, r"weight must be out_channels x in_channels x kh x kw"),
    ("bias shape", lambda: conv2d(X, W, torch.randn(3)),
     ValueError, r"bias must hold one value per output channel, shape \(2,\)"),
    ("bias dtype", lambda: conv2d(X, W, torch.randn(2).double()), TypeError, r"bias is torch.float64"),
    ("weight dtype", lambda: conv2d(X, W.double()), TypeError, r"x is torch.float32 but weight is torch.float64"),
    ("kernel too big", lambda: conv2d(X, torch.randn(2, 3, 5, 5)), ValueError,
     r"kernel 5 is larger than the padded input 4: use padding >= 1"),
    ("dilated too big", lambda: conv2d(X, W, dilation=(1, 3)), ValueError,
     r"dilated kernel 7 \(kernel 3, dilation 3\) is larger than the padded input 4: use padding >= 2 \(input width"),
    ("stride 0", lambda: conv2d(X, W, stride=0), ValueError, r"stride must be >= 1, got 0"),
    ("stride pair 0", lambda: conv2d(X, W, stride=(1, 0)), ValueError, r"stride must be >= 1, got \(1, 0\)"),
    ("float stride", lambda: conv2d(X, W, stride=1.5),
     TypeError, r"stride must be an int or a pair of ints, got 1.5"),
    ("bool stride", lambda: conv2d(X, W, stride=True), TypeError, r"stride must be an int or a pair of ints"),
    ("dilation 0", lambda: conv2d(X, W, dilation=0), ValueError, r"dilation must be >= 1, got 0"),
    ("negative padding", lambda: conv2d(X, W, padding=-1), ValueError, r"padding must be >= 0, got -1"),
    ("padding mode", lambda: conv2d(X, W, padding="full"),
     ValueError, r"padding='full' is not a padding mode: use 'valid', 'same'"),
    ("same strided", lambda: conv2d(X, W, stride=2, padding="same"),
     ValueError, r"padding='same' needs stride 1.*padding=\(1, 1\)"),
    ("impl", lambda: conv2d(X, W, impl="fast"), ValueError, r"impl must be one of \('loops', 'im2col'\), got 'fast'"),
    ("im2col kernel", lambda: im2col(X, 5),
     ValueError, r"kernel 5 is larger than the padded input 4: use padding >= 1"),
    ("col2im 2-d", lambda: col2im(torch.randn(27, 4), 4, 3),
     ValueError, r"cols must be a N x \(C \* kh \* kw\) x L tensor"),
    ("col2im rows", lambda: col2im(torch.randn(1, 10, 4), 4, 3),
     ValueError, r"cols has 10 rows, not a multiple of the 9 taps"),
    ("col2im columns", lambda: col2im(torch.randn(1, 9, 5), 4, 3),
     ValueError, r"cols has 5 columns, but .* gives 2 x 2 = 4"),
    ("pool padding", lambda: max_pool2d(X, 3, padding=2), ValueError,
     r"padding must be at most half the kernel size, got padding=\(2, 2\) for kernel_size=\(3, 3\): "
     r"use padding <= \(1, 1\)"),
    ("pool kernel", lambda: avg_pool2d(X, 6),
     ValueError, r"kernel 6 is larger than the padded input 4: use padding >= 1"),
    ("pool 3-d", lambda: max_pool2d(X[0], 2), ValueError, r"x must be N x C x H x W"),
    ("pool stride", lambda: avg_pool2d(X, 2, stride=0), ValueError, r"stride must be >= 1, got 0"),
    ("module channels", lambda: Conv2d(0, 2, 3), ValueError, r"in_channels must be a positive int, got 0"),
    ("module impl", lambda: Conv2d(1, 2, 3, impl="numpy"), ValueError, r"impl must be one of"),
    ("module same strided", lambda: Conv2d(1, 2, 3, stride=2, padding="same"),
     ValueError, r"padding='same' needs stride 1"),
    ("module kernel", lambda: Conv2d(1, 2, 0), ValueError, r"kernel_size must be >= 1, got 0"),
    ("module pool padding", lambda: MaxPool2d(2, padding=2),
     ValueError, r"padding must be at most half the kernel size"),
]


@pytest.mark.parametrize(("call", "error", "message"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_bad_input_says_how_to_fix_it(call, error, message):
    with pytest.raises(error, match=message):
        call()
