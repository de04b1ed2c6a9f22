"""ST-RainNet: a ConvLSTM U-Net that maps past frames to the next frame's rain.

Layout (depth = len(hidden) - 1, default hidden (32, 64) -> depth 1)::

    x (B, T, C, H, W) --pad to a multiple of 2**depth-->
    encoder level i < depth: ConvLSTM(hidden[i]) over all T frames, keep its final (h, c)
                             as the skip, 2x2 max-pool every frame -> next level
    bottleneck:              ConvLSTM(hidden[-1]) over all T frames, attention on the
                             hidden state (every step or only the final one)
    decoder level i:         transposed-conv 2x up of the level below as the input of one
                             ConvLSTMCell step whose state (the skip connection) is the
                             encoder's final (h_i, c_i) at that level
    head:                    1x1 conv -> softplus (non-negative), crop back to (H, W)

Decoder state. The decoder is a one-step forecaster (the target is a single frame), so
its cell state must come from somewhere: zeros would turn the cell into a plain conv
block and throw away the memory the encoder built; the bottleneck's state has the wrong
shape and width. Each decoder cell therefore starts from the *encoder's final (h, c) at
the same level* (same width, same resolution), as in the encoder-forecaster of Shi et
al. (2015), and its input is the upsampled features. The skip h enters once, as the
recurrent state: concatenating it to the input as well would only split one weight into
two whose sum is all that matters (same function, 1.5x the decoder's convolution cost).

Speed. A ConvLSTM cell has one gate convolution over ``[x_t, h_{t-1}]`` producing all
four gates. Its weight splits into an input part and a recurrent part; the input part
does not depend on the recurrence, so :class:`ConvLSTM` applies it to all T frames in
one batched convolution and only the recurrent part runs step by step. The result is
the same function as the textbook per-step concatenation (tested), with one large GEMM
instead of T small ones.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from training.config import ModelConfig


# ----------------------------------------------------------------------------- cells
def make_norm(kind: str, channels: int, groups: int) -> nn.Module:
    """Normalisation of the gate pre-activations (channels = 4 * hidden)."""
    if kind == "none":
        return nn.Identity()
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        if channels % groups:
            raise ValueError(f"GroupNorm groups {groups} must divide gate channels {channels}")
        return nn.GroupNorm(groups, channels)
    if kind == "layer":  # LayerNorm over (C, H, W), resolution independent
        return nn.GroupNorm(1, channels)
    raise ValueError(f"unknown norm {kind!r}; allowed: none, batch, group, layer")


class ConvLSTMCell(nn.Module):
    """One ConvLSTM cell: a single convolution over [x, h] gives the four gates.

    Gate order in the conv output: input, forget, output, candidate. The state is
    created on the input's device and dtype (nothing hard-coded).
    """

    def __init__(self, in_channels: int, hidden: int, kernel_size: int = 3, norm: str = "group", groups: int = 8):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.in_channels = in_channels
        self.hidden = hidden
        self.padding = kernel_size // 2
        self.gates = nn.Conv2d(in_channels + hidden, 4 * hidden, kernel_size, padding=self.padding)
        self.norm = make_norm(norm, 4 * hidden, groups)
        with torch.no_grad():  # forget-gate bias 1: remember by default early in training
            self.gates.bias.zero_()
            self.gates.bias[hidden : 2 * hidden] = 1.0

    def init_state(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, _, h, w = x.shape  # (B, C, H, W)
        z = torch.zeros(b, self.hidden, h, w, device=x.device, dtype=x.dtype)
        return z, z

    def input_gates(self, x: torch.Tensor) -> torch.Tensor:
        """Input part of the gate convolution (bias included). x: (N, C_in, H, W)."""
        w = self.gates.weight[:, : self.in_channels]
        return F.conv2d(x, w, self.gates.bias, padding=self.padding)  # (N, 4h, H, W)

    def recurrent_weight(self) -> torch.Tensor:
        """Recurrent part of the gate weight, contiguous (take it once per sequence)."""
        return self.gates.weight[:, self.in_channels :].contiguous()

    def recurrent_gates(self, h: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        w = self.recurrent_weight() if weight is None else weight
        return F.conv2d(h, w, None, padding=self.padding)  # (B, 4h, H, W)

    def update(self, gates: torch.Tensor, c: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Gate nonlinearities and state update; ``c=None`` means a zero cell state."""
        gates = self.norm(gates)  # (B, 4h, H, W)
        # chunk (one concatenating backward), not slices (a zero-filled full-size grad each)
        i, f, o, g = gates.chunk(4, dim=1)
        i, f, o, g = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o), torch.tanh(g)
        c = i * g if c is None else f * c + i * g  # (B, h, H, W)
        h = o * torch.tanh(c)
        return h, c

    def forward(self, x: torch.Tensor, state=None) -> tuple[torch.Tensor, torch.Tensor]:
        """One step, textbook form: conv over the concatenation [x, h]."""
        h, c = state if state is not None else self.init_state(x)
        gates = self.gates(torch.cat([x, h], dim=1))  # (B, 4h, H, W)
        return self.update(gates, c)


class ConvLSTM(nn.Module):
    """Stacked ConvLSTM layers with per-layer hidden widths and kernel sizes.

    forward(x (B, T, C, H, W)) -> (outputs (B, T, h_last, H, W), [(h, c) per layer]).
    ``step_hook`` (optional) is applied to the last layer's h after every step and the
    modified h is carried on (used for every-step attention).

    Internally (:meth:`forward_frames`) a sequence is *frame-major*: one 4-D tensor
    (T*B, C, H, W) whose rows k*B..(k+1)*B are frame k, in channels-last memory. The
    frames of step k are then a contiguous slab (``chunk`` along dim 0, whose backward is
    a plain concatenation), the layer's outputs are one ``cat`` along dim 0, and oneDNN
    / cuDNN run the convolutions in their native NHWC layout without reorders.
    """

    def __init__(self, in_channels: int, hidden, kernel_size=3, norm: str = "group", groups: int = 8):
        super().__init__()
        hidden = [hidden] if isinstance(hidden, int) else list(hidden)
        ks = [kernel_size] * len(hidden) if isinstance(kernel_size, int) else list(kernel_size)
        if len(ks) != len(hidden):
            raise ValueError(f"kernel sizes {ks} do not match hidden widths {hidden}")
        chans = [in_channels] + hidden[:-1]
        self.cells = nn.ModuleList(
            ConvLSTMCell(ci, hi, ki, norm, groups) for ci, hi, ki in zip(chans, hidden, ks)
        )

    def forward(self, x: torch.Tensor, state=None, step_hook=None):
        t = x.shape[1]  # x: (B, T, C, H, W)
        seq, states = self.forward_frames(to_frames(x), t, state, step_hook)
        return from_frames(seq, t), states

    def forward_frames(self, x: torch.Tensor, t: int, state=None, step_hook=None):
        """x: frame-major (T*B, C, H, W) -> (outputs (T*B, h_last, H, W), [(h, c) per layer])."""
        states = []
        for li, cell in enumerate(self.cells):
            gxs = cell.input_gates(x).chunk(t, dim=0)  # T x (B, 4h, H, W), contiguous slabs
            w_h = cell.recurrent_weight()  # sliced once, not per step
            # zero initial state: the recurrent term and f * c vanish at the first step
            h, c = state[li] if state is not None else (None, None)
            last = li == len(self.cells) - 1
            # a norm saves its input for the backward: a slab used as-is would keep all T
            # frames' input gates alive, so the first step (no recurrent sum) gets a copy
            saves_input = not isinstance(cell.norm, nn.Identity)
            outs = []
            for k in range(t):
                if h is None:
                    gates = gxs[k].clone() if saves_input else gxs[k]
                else:
                    gates = gxs[k] + cell.recurrent_gates(h, w_h)
                h, c = cell.update(gates, c)
                if last and step_hook is not None:
                    h = step_hook(h)
                outs.append(h)
            x = torch.cat(outs, dim=0)  # (T*B, h, H, W), channels-last kept
            states.append((h, c))
        return x, states


def to_frames(x: torch.Tensor) -> torch.Tensor:
    """(B, T, C, H, W) -> frame-major (T*B, C, H, W) in channels-last memory (one copy)."""
    b, t, c, h, w = x.shape
    return x.permute(1, 0, 3, 4, 2).reshape(t * b, h, w, c).permute(0, 3, 1, 2)


def from_frames(x: torch.Tensor, t: int) -> torch.Tensor:
    """Frame-major (T*B, C, H, W) -> (B, T, C, H, W)."""
    return x.unflatten(0, (t, -1)).transpose(0, 1)


# ------------------------------------------------------------------------- attention
class SelfAttention2d(nn.Module):
    """Non-local block (SAGAN): Q/K reduced to C/8, gamma starts at 0 (training starts local)."""

    def __init__(self, channels: int):
        super().__init__()
        r = max(1, channels // 8)
        self.q = nn.Conv2d(channels, r, 1)
        self.k = nn.Conv2d(channels, r, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        b, c, hh, ww = x.shape

        def tokens(t):  # (B, C', H, W) -> (B, N, C'); a view for channels-last input
            return t.permute(0, 2, 3, 1).reshape(b, hh * ww, t.shape[1])

        q, k, v = tokens(self.q(x)), tokens(self.k(x)), tokens(self.v(x))  # (B, N, r|r|C)
        attn = torch.softmax(torch.bmm(q, k.transpose(1, 2)), dim=-1)  # (B, N, N), no 1/sqrt(r) (SAGAN)
        out = torch.bmm(attn, v).view(b, hh, ww, c).permute(0, 3, 1, 2)  # (B, C, H, W), channels-last
        return x + self.gamma * out


class SqueezeExcite2d(nn.Module):
    """Squeeze-and-excitation channel gating (reduction 8)."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        r = max(1, channels // reduction)
        self.fc1 = nn.Conv2d(channels, r, 1)
        self.fc2 = nn.Conv2d(r, channels, 1)

    def forward(self, x):
        s = x.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))


class CBAM2d(nn.Module):
    """Convolutional block attention: channel (avg+max MLP) then spatial (7x7) gating."""

    def __init__(self, channels: int, reduction: int = 8, spatial_kernel: int = 7):
        super().__init__()
        r = max(1, channels // reduction)
        self.mlp = nn.Sequential(nn.Conv2d(channels, r, 1), nn.ReLU(), nn.Conv2d(r, channels, 1))
        self.spatial = nn.Conv2d(2, 1, spatial_kernel, padding=spatial_kernel // 2)

    def forward(self, x):
        avg = x.mean(dim=(2, 3), keepdim=True)
        mx = x.amax(dim=(2, 3), keepdim=True)
        x = x * torch.sigmoid(self.mlp(avg) + self.mlp(mx))
        s = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)  # (B, 2, H, W)
        return x * torch.sigmoid(self.spatial(s))


class ECA2d(nn.Module):
    """Efficient channel attention: 1-D conv across pooled channels, adaptive kernel."""

    def __init__(self, channels: int, gamma: int = 2, b: int = 1):
        super().__init__()
        k = int(abs((math.log2(channels) + b) / gamma))
        k = k if k % 2 else k + 1
        self.conv = nn.Conv1d(1, 1, k, padding=k // 2, bias=False)

    def forward(self, x):
        s = x.mean(dim=(2, 3))  # (B, C)
        s = self.conv(s.unsqueeze(1)).squeeze(1)  # (B, C)
        return x * torch.sigmoid(s)[:, :, None, None]


def make_attention(kind: str, channels: int) -> nn.Module | None:
    if kind == "none":
        return None
    table = {"self": SelfAttention2d, "se": SqueezeExcite2d, "cbam": CBAM2d, "eca": ECA2d}
    if kind not in table:
        raise ValueError(f"unknown attention {kind!r}; allowed: none, {', '.join(table)}")
    return table[kind](channels)


# ----------------------------------------------------------------------------- U-Net
class ConvLSTMUNet(nn.Module):
    """ConvLSTM U-Net: (B, T, C, H, W) -> (B, n_out, H, W), any H and W.

    Regression head (``head='regression'``): one non-negative value per cell on the
    training target scale (log1p mm by default; :func:`training.losses.to_mm` inverts it).
    Bins head (``head='bins'``): logits of a categorical distribution over the rain bins
    cut at ``bin_edges_mm`` (:mod:`training.bins` turns them into probabilities, exceedance
    probabilities and a quantile forecast), MetNet style.
    """

    def __init__(
        self,
        in_channels: int,
        hidden=(32, 64),
        kernel_size: int = 3,
        attention: str = "self",
        attention_mode: str = "final",
        norm: str = "group",
        groups: int = 8,
        head: str = "regression",
        bin_edges_mm=ModelConfig.bin_edges_mm,
        dropout: float = 0.0,
        n_frames: int = 1,
        base_channel: int | None = None,
        base_affine=(1.0, 0.0),
        base_min: float = 0.1,
        region_shape=None,
    ):
        super().__init__()
        cfg = ModelConfig(tuple(hidden), kernel_size, attention, attention_mode, norm, groups, head,
                          tuple(bin_edges_mm), dropout=dropout)  # validates
        self.args = dict(
            in_channels=int(in_channels), hidden=list(cfg.hidden), kernel_size=kernel_size,
            attention=attention, attention_mode=attention_mode, norm=norm, groups=groups,
            head=head, bin_edges_mm=list(cfg.bin_edges_mm), dropout=float(dropout),
        )
        n_frames = int(n_frames)
        if n_frames < 1 or (n_frames > 1 and head != "regression"):
            raise ValueError(f"n_frames must be >= 1 (and > 1 only with the regression head), got {n_frames} "
                             f"with head {head!r}")
        if n_frames > 1:
            self.args["n_frames"] = n_frames  # absent for one frame: the main track's args unchanged
        # Persistence base (the radar track's ``radar.model.base: persistence``): every
        # output frame is the last input frame of channel ``base_channel`` (brought to the
        # target scale by ``a * x + b``, ``base_affine = (a, b)``) changed by the network:
        # ``softplus(head + softplus^-1(max(base, base_min)))``. The head starts at zero,
        # so an untrained network forecasts persistence and learns what changes.
        if base_channel is not None:
            if head != "regression" or not 0 <= int(base_channel) < int(in_channels) or float(base_min) <= 0:
                raise ValueError(f"base_channel needs the regression head, 0 <= base_channel < in_channels and "
                                 f"base_min > 0; got {base_channel!r}, {head!r}, {in_channels}, {base_min!r}")
            self.args.update(base_channel=int(base_channel), base_affine=[float(v) for v in base_affine],
                             base_min=float(base_min))
        self.base_channel = None if base_channel is None else int(base_channel)
        self.base_affine = tuple(float(v) for v in base_affine)
        self.base_min = float(base_min)
        # Region channel (``model.region_channel``): a static (H, W) input, 1 on region 1's
        # cells and 0 elsewhere, appended to every input frame; set by :meth:`set_region`,
        # saved with the weights (a buffer).
        if region_shape is None:
            self.region = None
        else:
            h, w = (int(v) for v in region_shape)
            if h < 1 or w < 1:
                raise ValueError(f"region_shape must be two positive sizes, got {region_shape!r}")
            self.args["region_shape"] = [h, w]
            self.register_buffer("region", torch.ones(1, 1, 1, h, w))
        self.n_frames = n_frames
        self.head_kind = head
        self.n_out = 1 if head == "regression" else len(cfg.bin_edges_mm) + 1
        hidden = list(cfg.hidden)
        self.depth = len(hidden) - 1
        self.attention_mode = attention_mode
        self.encoder = nn.ModuleList()
        cin = in_channels + (1 if self.region is not None else 0)
        for i in range(self.depth):
            self.encoder.append(ConvLSTM(cin, hidden[i], kernel_size, norm, groups))
            cin = hidden[i]
        self.bottleneck = ConvLSTM(cin, hidden[-1], kernel_size, norm, groups)
        self.attention = make_attention(attention, hidden[-1])
        self.up = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for i in reversed(range(self.depth)):
            self.up.append(nn.ConvTranspose2d(hidden[i + 1], hidden[i], 2, stride=2))
            self.decoder.append(ConvLSTMCell(hidden[i], hidden[i], kernel_size, norm, groups))
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Conv2d(hidden[0], self.n_out, 1)
        # Encoder-forecaster (n_frames > 1, the radar track): a ConvLSTM cell at full
        # resolution unrolled over the output frames, started from the decoder's state;
        # created after everything else so the one-frame model's parameters and their
        # initialisation order are those of the main track.
        self.forecaster = ConvLSTMCell(hidden[0], hidden[0], kernel_size, norm, groups) if n_frames > 1 else None
        if self.base_channel is not None:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def base_offset(self, x: torch.Tensor) -> torch.Tensor:
        """softplus^-1 of the persistence base, (B, 1, H, W), from the unpadded input."""
        a, b = self.base_affine
        base = (a * x[:, -1, self.base_channel] + b).clamp(min=self.base_min).unsqueeze(1)
        return base + torch.log(-torch.expm1(-base))  # log(expm1(base)), stable

    def set_region(self, region1_mask) -> None:
        """The region channel's values: ``region1_mask`` (H, W), true on region 1's cells."""
        mask = torch.as_tensor(np.asarray(region1_mask, bool), dtype=torch.float32)
        if self.region is None or tuple(mask.shape) != tuple(self.region.shape[-2:]):
            raise ValueError(f"region mask of shape {tuple(mask.shape)} for a model with region shape "
                             f"{None if self.region is None else tuple(self.region.shape[-2:])}")
        self.region.copy_(mask.to(self.region.device)[None, None, None])

    @classmethod
    def from_config(cls, in_channels: int, cfg: ModelConfig, region1_mask=None) -> "ConvLSTMUNet":
        """The model of ``cfg``; with ``cfg.region_channel`` the region channel is ``region1_mask``
        (H, W), which is then required."""
        shape = None
        if cfg.region_channel:
            if region1_mask is None:
                raise ValueError("model.region_channel needs the grid's region1_mask")
            shape = np.shape(region1_mask)
        model = cls(in_channels, cfg.hidden, cfg.kernel_size, cfg.attention, cfg.attention_mode, cfg.norm, cfg.groups,
                    cfg.head, cfg.bin_edges_mm, cfg.dropout, region_shape=shape)
        if shape is not None:
            model.set_region(region1_mask)
        return model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, h, w = x.shape[1], x.shape[-2], x.shape[-1]  # x: (B, T, C, H, W)
        offset = self.base_offset(x) if self.base_channel is not None else None
        if self.region is not None:
            if tuple(x.shape[-2:]) != tuple(self.region.shape[-2:]):
                raise ValueError(f"input grid {tuple(x.shape[-2:])} differs from the region channel's "
                                 f"{tuple(self.region.shape[-2:])}")
            x = torch.cat([x, self.region.to(x.dtype).expand(x.shape[0], t, 1, h, w)], dim=2)
        m = 2**self.depth
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:  # zero = the normalised mean; cropped back below
            x = F.pad(x, (0, pw, 0, ph))
        x = to_frames(x)  # (T*B, C, H, W) channels-last, see ConvLSTM
        skips = []
        for enc in self.encoder:
            seq, states = enc.forward_frames(x, t)  # (T*B, h_i, H_i, W_i)
            skips.append(states[-1])
            x = F.max_pool2d(seq, 2)  # (T*B, h_i, H_i/2, W_i/2)
        hook = self.attention if (self.attention is not None and self.attention_mode == "every_step") else None
        _, states = self.bottleneck.forward_frames(x, t, step_hook=hook)
        y = states[-1][0]  # (B, h_last, H_d, W_d)
        if self.attention is not None and self.attention_mode == "final":
            y = self.attention(y)
        for up, cell, (hs, cs) in zip(self.up, self.decoder, reversed(skips)):
            y, _ = cell(up(y), (hs, cs))  # input (B, h_i, H_i, W_i); the skip is the state
        if self.forecaster is not None:  # (B, n_frames, H, W): frame k from the k-th unrolled state
            hf, cf, frames = y, y, []
            for _ in range(self.n_frames):
                hf, cf = self.forecaster(hf, (hf, cf))
                frames.append(self.head(self.dropout(hf)))  # (B, 1, H_pad, W_pad)
            out = torch.cat(frames, dim=1)[..., :h, :w]
            return F.softplus(out if offset is None else out + offset)  # >= 0, target scale
        out = self.head(self.dropout(y))[..., :h, :w]  # (B, n_out, H, W)
        if self.head_kind == "regression":
            out = F.softplus(out if offset is None else out + offset)  # (B, 1, H, W), >= 0, target scale
        return out  # bins head: (B, n_bins, H, W) logits


# ---------------------------------------------------------------------- accounting
def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_flops(model: nn.Module, input_shape, backward: bool = False) -> int:
    """FLOPs (2 x multiply-adds of convolutions and matmuls) of one pass at ``input_shape``.

    With ``backward=True``, forward plus backward (a training step without the optimiser).
    Counted by torch's FlopCounterMode on a real input, so it follows the actual graph.
    """
    from torch.utils.flop_counter import FlopCounterMode

    import copy

    model = copy.deepcopy(model)  # no side effects (BatchNorm running stats, grads)
    p = next(model.parameters())
    x = torch.zeros(input_shape, device=p.device, dtype=p.dtype)
    model.train(backward)
    counter = FlopCounterMode(display=False)
    with counter:
        if backward:
            model(x).sum().backward()
        else:
            with torch.no_grad():
                model(x)
    return int(counter.get_total_flops())
