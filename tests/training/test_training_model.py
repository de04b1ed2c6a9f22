"""Model: shapes over every option, odd grids, gradients, overfitting, the fast path."""
from __future__ import annotations

import itertools

import pytest
import torch

from pipeline.common.errors import ConfigError
from training.config import ModelConfig
from training.losses import masked_loss
from training.model import (
    ConvLSTM,
    ConvLSTMCell,
    ConvLSTMUNet,
    SelfAttention2d,
    count_flops,
    count_parameters,
    from_frames,
    to_frames,
)

ATT = ["none", "self", "se", "cbam", "eca"]
MODES = ["every_step", "final"]
NORMS = ["none", "batch", "group", "layer"]


@pytest.mark.parametrize("attention,mode,norm", list(itertools.product(ATT, MODES, NORMS)))
def test_shapes_every_option_combination(attention, mode, norm):
    torch.manual_seed(0)
    m = ConvLSTMUNet(3, hidden=(8, 16), attention=attention, attention_mode=mode, norm=norm, groups=4)
    x = torch.randn(2, 3, 3, 7, 11)  # odd grid
    y = m(x)
    assert y.shape == (2, 1, 7, 11)
    assert torch.isfinite(y).all() and (y >= 0).all()


@pytest.mark.parametrize("hidden", [(8,), (8, 16), (4, 8, 8)])
@pytest.mark.parametrize("grid", [(1, 1), (5, 9), (8, 8), (13, 6), (24, 48)])
def test_any_grid_size_and_depth(hidden, grid):
    m = ConvLSTMUNet(2, hidden=hidden, groups=4, attention="self")
    y = m(torch.randn(1, 2, 2, *grid))
    assert y.shape == (1, 1, *grid)


def test_padding_does_not_leak_into_the_crop_region_shape_only():
    """Padded and unpadded grids share weights; a grid already a multiple is not padded."""
    m = ConvLSTMUNet(2, hidden=(4, 8), groups=4, attention="none", norm="none").eval()
    x = torch.randn(1, 2, 2, 8, 8)
    # padding an 8x8 input by hand to 8x10 with zeros changes only columns near the pad
    y = m(x)
    y_pad = m(torch.nn.functional.pad(x, (0, 2)))[..., :8]
    assert torch.allclose(y[..., :4], y_pad[..., :4], atol=1e-6)


def test_state_is_created_on_input_dtype_and_device():
    cell = ConvLSTMCell(3, 4, norm="none").double()
    x = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    h, c = cell(x)
    assert h.dtype == torch.float64 and c.dtype == torch.float64 and h.device == x.device


def test_batched_input_gates_equal_textbook_step_by_step():
    """The layer's batched input convolution computes exactly the textbook per-step cell."""
    torch.manual_seed(0)
    layer = ConvLSTM(3, [5, 6], kernel_size=[3, 5], norm="group", groups=2).double()
    x = torch.randn(2, 4, 3, 6, 7, dtype=torch.float64)
    out, states = layer(x)
    seq = x
    for li, cell in enumerate(layer.cells):
        state, outs = None, []
        for t in range(seq.shape[1]):
            state = cell(seq[:, t], state)  # conv over cat([x, h])
            outs.append(state[0])
        seq = torch.stack(outs, 1)
        torch.testing.assert_close(states[li][0], state[0])
        torch.testing.assert_close(states[li][1], state[1])
    torch.testing.assert_close(out, seq)


def test_frame_major_layout_round_trip():
    """(B, T, C, H, W) <-> frame-major (T*B, C, H, W): rows k*B..(k+1)*B are frame k."""
    x = torch.randn(3, 4, 5, 6, 7)
    f = to_frames(x)
    assert f.shape == (12, 5, 6, 7) and f.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(f[2 * 3 : 3 * 3], x[:, 2])
    torch.testing.assert_close(from_frames(f, 4), x)


def test_model_same_output_for_any_input_memory_layout():
    torch.manual_seed(0)
    m = ConvLSTMUNet(3, hidden=(4, 8), groups=2, attention="self").double().eval()
    with torch.no_grad():
        m.attention.gamma.fill_(0.5)
    x = torch.randn(2, 3, 3, 9, 11, dtype=torch.float64)
    with torch.no_grad():
        a = m(x)
        b = m(x.transpose(0, 1).contiguous().transpose(0, 1))  # strided (B, T) input
    torch.testing.assert_close(a, b)


def test_self_attention_matches_the_formula():
    """SAGAN non-local block: out = x + gamma * V softmax(Q^T K)^T, no 1/sqrt(r) scaling."""
    torch.manual_seed(0)
    att = SelfAttention2d(16).double()
    with torch.no_grad():
        att.gamma.fill_(0.7)
    x = torch.randn(2, 16, 3, 5, dtype=torch.float64)
    q = att.q(x).flatten(2)  # (B, r, N)
    k = att.k(x).flatten(2)
    v = att.v(x).flatten(2)  # (B, C, N)
    a = torch.softmax(torch.einsum("bri,brj->bij", q, k), dim=-1)  # (B, N, N): row i attends over j
    ref = x + 0.7 * torch.einsum("bcj,bij->bci", v, a).view_as(x)
    torch.testing.assert_close(att(x), ref)
    torch.testing.assert_close(att(x.contiguous(memory_format=torch.channels_last)), ref)


def test_self_attention_starts_as_identity():
    att = SelfAttention2d(16)
    x = torch.randn(2, 16, 3, 5)
    torch.testing.assert_close(att(x), x)
    assert att.q.out_channels == 2 and att.gamma.item() == 0.0


@pytest.mark.parametrize("attention", ATT)
@pytest.mark.parametrize("norm", NORMS)
def test_every_parameter_gets_a_gradient(attention, norm):
    torch.manual_seed(0)
    m = ConvLSTMUNet(3, hidden=(8, 16), attention=attention, attention_mode="every_step", norm=norm, groups=4)
    if attention == "self":  # gamma = 0 blocks q/k/v gradients by design; open it for the check
        with torch.no_grad():
            m.attention.gamma.fill_(0.5)
    m(torch.randn(3, 3, 3, 6, 10)).square().mean().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_one_batch_overfits():
    torch.manual_seed(0)
    m = ConvLSTMUNet(4, hidden=(8, 16), groups=4)
    x = torch.randn(4, 3, 4, 8, 8)
    y = torch.log1p(torch.relu(3 * x[:, -1, :1] + 1))  # (4, 1, 8, 8)
    mask = torch.ones_like(y)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
    first = None
    for _ in range(150):
        loss = masked_loss(m(x), y, mask, "weighted_mse")
        first = float(loss) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < first / 10, (first, float(loss))


def test_config_validation_names_the_key():
    with pytest.raises(ConfigError, match="model.groups"):
        ModelConfig(hidden=(6, 12), groups=5)
    with pytest.raises(ConfigError, match="model.attention"):
        ModelConfig(attention="transformer")
    with pytest.raises(ConfigError, match="kernel_size"):
        ModelConfig(kernel_size=4)


def test_parameter_and_flop_counts():
    m = ConvLSTMUNet(56, hidden=(32, 64), attention="none", norm="none")
    # gate convs: (56+32)*128*9+128, (32+64)*256*9+256; decoder (32+32)*128*9+128;
    # transposed conv 64*32*4+32; head 32+1
    expected = (88 * 128 * 9 + 128) + (96 * 256 * 9 + 256) + (64 * 128 * 9 + 128) + (64 * 32 * 4 + 32) + 33
    assert count_parameters(m) == expected
    # forward FLOPs of the convolutions, 2 per multiply-add, 6 frames on 24x24
    p0, p1 = 24 * 24, 12 * 12
    conv = 2 * (6 * p0 * 56 * 128 * 9 + 5 * p0 * 32 * 128 * 9  # level 0 (no recurrent conv at t=0)
                + 6 * p1 * 32 * 256 * 9 + 5 * p1 * 64 * 256 * 9  # bottleneck
                + p0 * 64 * 128 * 9 + p1 * 64 * 32 * 4 + p0 * 32)  # decoder cell, up, head
    assert count_flops(m, (1, 6, 56, 24, 24)) == conv


def test_region_channel_is_a_saved_static_input():
    """model.region_channel: one more input channel, 1 on region 1 and 0 elsewhere, on every
    frame; the forward pass equals a plain model fed that channel explicitly, it travels with
    the weights (a buffer), and a grid of another shape is refused."""
    import numpy as np

    torch.manual_seed(1)
    mask = np.zeros((8, 12), bool)
    mask[:, 6:] = True  # region 1: the eastern half
    m = ConvLSTMUNet.from_config(3, ModelConfig(hidden=(8, 16), groups=4, region_channel=True), mask).eval()
    assert m.args["region_shape"] == [8, 12] and m.args["in_channels"] == 3
    plain = ConvLSTMUNet(4, hidden=(8, 16), groups=4).eval()
    plain.load_state_dict({k: v for k, v in m.state_dict().items() if k != "region"})
    x = torch.randn(2, 3, 3, 8, 12)
    explicit = torch.cat([x, torch.from_numpy(mask).float().expand(2, 3, 1, 8, 12)], dim=2)
    with torch.no_grad():
        torch.testing.assert_close(m(x), plain(explicit))
        again = ConvLSTMUNet(**m.args)
        again.load_state_dict(m.state_dict())  # the mask is restored with the weights
        torch.testing.assert_close(again.eval()(x), m(x))
        flipped = ConvLSTMUNet(**m.args)
        flipped.load_state_dict(m.state_dict())
        flipped.set_region(~mask)
        assert not torch.allclose(flipped.eval()(x), m(x))  # the network sees where region 1 is
    with pytest.raises(ValueError, match="differs from the region channel"):
        m(torch.randn(1, 3, 3, 8, 8))
    with pytest.raises(ValueError, match="needs the grid's region1_mask"):
        ConvLSTMUNet.from_config(3, ModelConfig(hidden=(8, 16), groups=4, region_channel=True))
    plain_args = ConvLSTMUNet.from_config(3, ModelConfig(hidden=(8, 16), groups=4)).args
    assert "region_shape" not in plain_args  # off: the args (and run keys) of before
    from training.memory import count_params  # the memory estimate counts the channel without a grid

    assert count_params(3, ModelConfig(hidden=(8, 16), groups=4, region_channel=True)) == count_parameters(m)
    assert count_parameters(m) == count_parameters(plain)
