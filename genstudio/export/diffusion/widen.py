"""Net2WiderNet for the UNet: the same function with every level's channels multiplied by an integer factor.

    state, cfg = widen_unet(unet.state_dict(), unet.cfg, factor=2)
    wider = UNet(cfg); wider.load_state_dict(state)        # wider(x, t, c) == unet(x, t, c), up to rounding

Chen, Goodfellow & Shlens, "Net2Net" (https://arxiv.org/abs/1511.05641). Each old channel c becomes `factor`
copies at c * factor ... c * factor + factor - 1, so a GroupNorm group holds copies of the same old channels and
normalises them exactly as before, and the up path's concatenations widen the same way. A layer that reads the
copies splits the old weight between them: each copy gets w / factor plus noise that sums to zero over the
copies, which keeps the output while giving the copies different gradients, so they can come apart in training.

Three kinds of axis are not copied channel by channel:
- attention heads (the query, key and value projections' outputs and the output projection's input) are copied
  whole, so that every new head is an old head with its own head_dim and softmax scale;
- the sinusoidal timestep features: with widths[0] doubled their frequencies include the old ones at every
  other index, which take the old weights; the new frequencies start at zero weight;
- the image channels and the text encoder's width, which do not change.

Only a factor common to every level keeps the function exact: widening some levels alone changes which
residual blocks have a 1x1 skip convolution and mixes widened and unwidened channels in the up path's
GroupNorm groups.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from genstudio.export.diffusion.unet import UNet, UNetConfig

HEAD_OUT = ".q.weight"  # query projection: output channels are attention heads
KV_OUT = ".kv.weight"  # key and value projections, stacked: output channels are heads, twice
HEAD_IN = "_attn.out.weight"  # attention output projection: input channels are heads


def widened_config(cfg: UNetConfig, factor: int) -> UNetConfig:
    """cfg with every level's width times factor."""
    return replace(cfg, widths=tuple(w * factor for w in cfg.widths))


def check_widenable(cfg: UNetConfig, factor: int) -> None:
    """Raise unless the UNet of cfg can be widened `factor` times with its function kept."""
    if factor < 1 or int(factor) != factor:
        raise ValueError(f"the widening factor must be a whole number of at least 1, not {factor}")
    if cfg.widths[0] % 2:
        raise ValueError(f"the first width ({cfg.widths[0]}) sizes the sinusoidal timestep features; it must be even")
    last = len(cfg.widths) - 1  # the middle block attends at the last level's width
    for level, width in enumerate(cfg.widths):
        if (level in cfg.attention or level == last) and width % cfg.head_dim:
            raise ValueError(f"level {level} has {width} channels, not whole heads of {cfg.head_dim}: its attention "
                             "cannot be copied head by head")


def factor_between(old: UNetConfig, new: UNetConfig) -> int:
    """The common factor from old's widths to new's, where nothing else that shapes a weight differs; raises
    where there is none."""
    old_w, new_w = tuple(old.widths), tuple(new.widths)
    same_shapes = replace(new, widths=old_w, size=old.size, dropout=old.dropout) == replace(old, widths=old_w)
    if len(old_w) != len(new_w) or not same_shapes:
        raise ValueError(f"only the widths may change in a widening: {old} -> {new}")
    factor = new_w[0] // old_w[0]
    if factor < 1 or any(n != o * factor for o, n in zip(old_w, new_w, strict=True)):
        raise ValueError(f"widths {list(old_w)} -> {list(new_w)}: every level must grow by the same whole factor "
                         "(Net2Net keeps the function exactly only then)")
    return factor


def _copies(n_old: int, factor: int) -> np.ndarray:
    return np.arange(n_old * factor) // factor


def _heads(n_old: int, factor: int) -> np.ndarray:
    return np.arange(n_old * factor) % n_old


def _stacked_heads(n_old: int, factor: int) -> np.ndarray:
    half = n_old // 2  # key channels, then value channels
    j = np.arange(n_old * factor)
    return np.where(j < half * factor, j % half, half + (j - half * factor) % half)


def _time_features(n_old: int, factor: int) -> np.ndarray:
    """New sinusoidal feature -> old feature (-1: a frequency the old embedding lacks). Features are
    [cos(f_0..f_h-1), sin(f_0..f_h-1)] with f_k = P ** (-k / h); with h' = factor * h, f'_(factor k) = f_k."""
    half = n_old // 2
    j = np.arange(n_old * factor)
    part, k = j // (half * factor), j % (half * factor)
    return np.where(k % factor == 0, part * half + k // factor, -1)


def _axis_map(name: str, axis: int, n_old: int, factor: int) -> np.ndarray:
    if name == "time_mlp.0.weight" and axis == 1:
        return _time_features(n_old, factor)
    if axis == 0 and name.endswith(HEAD_OUT):
        return _heads(n_old, factor)
    if axis == 0 and name.endswith(KV_OUT):
        return _stacked_heads(n_old, factor)
    if axis == 1 and name.endswith(HEAD_IN):
        return _heads(n_old, factor)
    return _copies(n_old, factor)


def _split_inputs(w: torch.Tensor, src: np.ndarray, gen: torch.Generator, noise: float) -> torch.Tensor:
    """w (out, in', ...) whose input columns copy old columns `src` (-1: none): divide each by its number of
    copies and add noise that sums to zero over the copies of each old column."""
    valid = src >= 0
    counts = np.bincount(src[valid], minlength=int(src.max()) + 1)
    scale = np.where(valid, 1.0 / np.maximum(counts[np.maximum(src, 0)], 1), 0.0)
    shape = [1, len(src)] + [1] * (w.dim() - 2)
    w = w * torch.tensor(scale, dtype=w.dtype).view(shape)
    if noise and (counts > 1).any():
        copied = torch.tensor(valid & (counts[np.maximum(src, 0)] > 1), dtype=w.dtype).view(shape)
        e = torch.randn(w.shape, generator=gen, dtype=w.dtype) * (noise * float(w.std())) * copied
        group = torch.tensor(np.maximum(src, 0))
        sums = torch.zeros(w.shape[0], int(counts.size), *w.shape[2:], dtype=w.dtype).index_add_(1, group, e)
        mean = sums / torch.tensor(np.maximum(counts, 1), dtype=w.dtype).view([1, -1] + [1] * (w.dim() - 2))
        w = w + (e - mean.index_select(1, group)) * copied
    return w


def widen_unet(state: dict[str, torch.Tensor], cfg: UNetConfig, factor: int, *, noise: float = 0.05,
               seed: int = 0) -> tuple[dict[str, torch.Tensor], UNetConfig]:
    """A UNet state dict with every level `factor` times as wide that computes the same function; `noise` is
    the symmetry-breaking noise on split weights, relative to each weight's standard deviation."""
    check_widenable(cfg, factor)
    new_cfg = widened_config(cfg, factor)
    if factor == 1:
        return {k: v.clone() for k, v in state.items()}, new_cfg
    with torch.device("meta"):  # shapes only, nothing allocated
        shapes = {k: v.shape for k, v in UNet(new_cfg).state_dict().items()}
    if set(shapes) != set(state):
        raise ValueError("the state dict does not fit this UNet config: "
                         + ", ".join(sorted(set(shapes) ^ set(state))[:5]))
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, w in state.items():
        w = w.detach().float()
        for axis, (n_old, n_new) in enumerate(zip(w.shape, shapes[name], strict=True)):
            if n_new == n_old:
                continue
            if n_new != n_old * factor or axis > 1:
                raise ValueError(f"{name}: axis {axis} goes {n_old} -> {n_new}, not x{factor}")
            src = _axis_map(name, axis, n_old, factor)
            if axis == 0:
                w = w.index_select(0, torch.tensor(src))
            else:
                w = _split_inputs(w.index_select(1, torch.tensor(np.maximum(src, 0))), src, gen, noise)
        out[name] = w.to(state[name].dtype).contiguous()
    return out, new_cfg
