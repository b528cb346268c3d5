"""``coursekit bench upsampling``: our upsampling vs torch's on a typical decoder batch.

One row per operation: bilinear ×2 upsampling (``F.interpolate``) and a 3×3 stride-2
transposed convolution (``F.conv_transpose2d``), both N=8, C=32, 32×32 → 64×64,
float32 on the CPU with 2 threads. Times are medians after a warmup; the
requirement is ours within 3× of torch.
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F

from coursekit.upsampling.bilinear import bilinear_upsample
from coursekit.upsampling.transposed import conv_transpose2d


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _row(name: str, ours, reference, repeat: int, note: str) -> dict:
    """Median times of ``ours`` and ``reference``, called alternately so both see the same load."""
    with torch.no_grad():
        for _ in range(2):  # warmup
            ours(), reference()
        pairs = [(_time(ours), _time(reference)) for _ in range(repeat)]
    t_ours = statistics.median(p[0] for p in pairs)
    t_ref = statistics.median(p[1] for p in pairs)
    ratio = t_ours / t_ref
    flag = "" if ratio <= 3 else " — SLOWER THAN 3× TORCH"
    return {"benchmark": name, "ours": f"{t_ours * 1e3:.2f} ms",
            "reference": f"{t_ref * 1e3:.2f} ms", "ratio": ratio, "note": note + flag}


def bench(quick: bool) -> list[dict]:
    """Time ours vs torch; rows ``{"benchmark", "ours", "reference", "ratio", "note"}``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        gen = torch.Generator().manual_seed(0)
        repeat = 5 if quick else 21
        x = torch.randn(8, 32, 32, 32, generator=gen)  # (N, C, H, W)
        weight = torch.randn(32, 32, 3, 3, generator=gen) / 17  # (C_in, C_out, kH, kW)
        bias = torch.randn(32, generator=gen)
        shape = "N=8, C=32, 32×32 → 64×64, float32, 2 threads"
        return [
            _row("bilinear_upsample ×2 vs F.interpolate",
                 lambda: bilinear_upsample(x, scale_factor=2),
                 lambda: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False),
                 repeat, shape),
            _row("conv_transpose2d 3×3 stride 2 vs F.conv_transpose2d",
                 lambda: conv_transpose2d(x, weight, bias, stride=2, padding=1, output_padding=1),
                 lambda: F.conv_transpose2d(x, weight, bias, stride=2, padding=1, output_padding=1),
                 repeat, shape + ", padding=1, output_padding=1"),
        ]
    finally:
        torch.set_num_threads(threads)
