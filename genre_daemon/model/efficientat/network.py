"""EfficientAT's mn04 (a MobileNetV3 at width 0.4, AudioSet head) in PyTorch, inference only.

Why a port: the pretrained mn04_as tagger (Schmid et al., ICASSP 2023, MIT) gives the genre
model a second, independent view of a song (527 AudioSet classes, 50 of them music genres,
and a 384-d embedding), and the daemon must run it without the original code's torchvision
dependency. Written from the reference's layer table (EfficientAT ``models/mn/model.py``,
``block_types.py``); module names follow it, so the 312 shipped tensors load by name with
``strict=True``.

Architecture, input a log-mel ``(B, 1, 128, T)`` (``T`` any length; 1000 frames = 10 s):

* ``features.0``: conv 3x3 stride 2 (1 -> 8), batch-norm, hardswish;
* ``features.1`` - ``features.15``: inverted residual blocks (``block``: 1x1 expand unless the
  width is already the expanded one, depthwise kxk with stride, squeeze-excitation over channels
  where the table says so, 1x1 project without activation; a residual connection when the stride
  is 1 and the width unchanged), channel counts those of MobileNetV3-Large scaled by 0.4 and
  rounded to multiples of 8;
* ``features.16``: 1x1 conv 64 -> 384, batch-norm, hardswish;
* the embedding: the mean over frequency and time (384); the logits: ``classifier`` (mean pool,
  linear 384 -> 512, hardswish, dropout (off at inference), linear 512 -> 527).

All convolutions are bias-free and followed by batch-norm (epsilon 1e-3); squeeze-excitation is
mean -> linear -> ReLU -> linear -> sigmoid, bottleneck a quarter of the channels (rounded to 8).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

__all__ = ["MN04", "N_CLASSES", "EMBED_DIM", "WIDTH", "BN_EPS", "make_divisible", "block_table"]

N_CLASSES = 527
WIDTH = 0.4
BN_EPS = 1e-3
EMBED_DIM = 384  # 6 * the last block's 64 channels
HEAD_DIM = 512  # 1280 * 0.4


class Block(NamedTuple):
    """One row of MobileNetV3-Large's table (full width): in, kernel, expanded, out, SE, hardswish, stride."""

    cin: int
    kernel: int
    expanded: int
    cout: int
    se: bool
    hardswish: bool
    stride: int


# MobileNetV3-Large (Howard et al. 2019, table 1), as EfficientAT uses it (strides 2, 2, 2, 2).
LARGE = (
    Block(16, 3, 16, 16, False, False, 1),
    Block(16, 3, 64, 24, False, False, 2),
    Block(24, 3, 72, 24, False, False, 1),
    Block(24, 5, 72, 40, True, False, 2),
    Block(40, 5, 120, 40, True, False, 1),
    Block(40, 5, 120, 40, True, False, 1),
    Block(40, 3, 240, 80, False, True, 2),
    Block(80, 3, 200, 80, False, True, 1),
    Block(80, 3, 184, 80, False, True, 1),
    Block(80, 3, 184, 80, False, True, 1),
    Block(80, 3, 480, 112, True, True, 1),
    Block(112, 3, 672, 112, True, True, 1),
    Block(112, 5, 672, 160, True, True, 2),
    Block(160, 5, 960, 160, True, True, 1),
    Block(160, 5, 960, 160, True, True, 1),
)


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round ``v`` to the nearest multiple of ``divisor`` (at least ``divisor``), going up a step
    when rounding down would lose more than 10 % (the TF MobileNet rule)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def block_table(width: float = WIDTH) -> list[Block]:
    """:data:`LARGE` with its channel counts scaled by ``width``."""
    return [b._replace(cin=make_divisible(b.cin * width), expanded=make_divisible(b.expanded * width),
                       cout=make_divisible(b.cout * width)) for b in LARGE]


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
            act: type[nn.Module] | None = None) -> nn.Sequential:
    """Conv (no bias, 'same' padding) -> batch-norm -> optional activation: ``.0``, ``.1``, ``.2``."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(cout, eps=BN_EPS)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    """Channel gates from the channel means: ``x * sigmoid(fc2(relu(fc1(mean(x)))))``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        squeeze = make_divisible(channels // 4)
        self.fc1 = nn.Linear(channels, squeeze)
        self.fc2 = nn.Linear(squeeze, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        s = torch.relu(self.fc1(x.mean(dim=(2, 3))))
        return x * torch.sigmoid(self.fc2(s))[:, :, None, None]


class ChannelSE(nn.Module):
    """The reference's "concurrent" SE holder with its one channel layer (named
    ``conc_se_layers.0``; the max over a single layer's output is that output)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conc_se_layers = nn.ModuleList([SqueezeExcitation(channels)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.conc_se_layers[0](x)


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise (kxk, stride) -> SE -> project (1x1), plus the input when shapes allow."""

    def __init__(self, b: Block) -> None:
        super().__init__()
        act = nn.Hardswish if b.hardswish else nn.ReLU
        layers: list[nn.Module] = []
        if b.expanded != b.cin:
            layers.append(conv_bn(b.cin, b.expanded, 1, act=act))
        layers.append(conv_bn(b.expanded, b.expanded, b.kernel, b.stride, groups=b.expanded, act=act))
        if b.se:
            layers.append(ChannelSE(b.expanded))
        layers.append(conv_bn(b.expanded, b.cout, 1))
        self.block = nn.Sequential(*layers)
        self.residual = b.stride == 1 and b.cin == b.cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        y = self.block(x)
        return y + x if self.residual else y


class MN04(nn.Module):
    """mn04 with the AudioSet MLP head: ``forward(mel (B, 1, 128, T))`` -> ``(logits (B, 527),
    embedding (B, 384))``. Load its weights with ``load_state_dict(..., strict=True)``."""

    def __init__(self, n_classes: int = N_CLASSES) -> None:
        super().__init__()
        table = block_table()
        last = table[-1].cout
        self.features = nn.Sequential(conv_bn(1, table[0].cin, 3, 2, act=nn.Hardswish),
                                      *(InvertedResidual(b) for b in table),
                                      conv_bn(last, 6 * last, 1, act=nn.Hardswish))
        self.classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(6 * last, HEAD_DIM),
                                        nn.Hardswish(), nn.Dropout(0.2), nn.Linear(HEAD_DIM, n_classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        if x.dim() != 4 or x.shape[1] != 1 or x.shape[2] != 128:
            raise ValueError(f"mn04 expects log-mels (batch, 1, 128, frames), got {tuple(x.shape)}")
        h = self.features(x)
        return self.classifier(h), h.mean(dim=(2, 3))
