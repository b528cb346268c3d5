"""``coursekit bench detection``: our detection primitives vs torchvision's C++ kernels on CPU.

Rows: ``roi_align`` with 512 RoIs on 2×64×50×50 features (outputs 7×7 and 14×14,
``sampling_ratio`` 2 and adaptive, forward; and one forward + backward), ``box_iou``
and ``nms`` (1000 boxes). The goal: every row within 3× of torchvision. torchvision is
imported here only, to compare.
"""

from __future__ import annotations

import torch
import torchvision.ops as tv

from coursekit.bench import time_call
from coursekit.detection import box_iou, nms, roi_align


def _row(name: str, ours: float, reference: float, note: str) -> dict:
    return {"benchmark": name, "ours": f"{ours * 1e3:.1f} ms",
            "reference": f"{reference * 1e3:.1f} ms", "ratio": ours / reference, "note": note}


def _rois(k: int, n_images: int, size: float, generator: torch.Generator) -> torch.Tensor:
    xy = torch.rand(k, 2, generator=generator) * size * 0.8
    wh = torch.rand(k, 2, generator=generator) * size * 0.6 + 2
    batch = torch.randint(0, n_images, (k, 1), generator=generator).float()
    return torch.cat([batch, xy, (xy + wh).clamp(max=size)], dim=1)


def _boxes(n: int, generator: torch.Generator) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=generator) * 200
    return torch.cat([xy, xy + torch.rand(n, 2, generator=generator) * 40 + 1], dim=1)


def bench(quick: bool = False) -> list[dict]:
    """Time each primitive against torchvision; one row per case (median of several runs)."""
    repeat = 3 if quick else 7
    g = torch.Generator().manual_seed(0)
    features = torch.randn(2, 64, 50, 50, generator=g)
    rois = _rois(512, 2, 50.0, g)
    note = f"512 RoIs, 2×64×50×50, fp32, {torch.get_num_threads()} threads"
    rows = []
    for size in (7, 14):
        for ratio in (2, -1):
            args = (features, rois, size, 1.0, ratio, True)
            ours = time_call(lambda a=args: roi_align(*a), repeat=repeat)
            ref = time_call(lambda a=args: tv.roi_align(*a), repeat=repeat)
            rows.append(_row(f"roi_align {size}×{size}, sampling_ratio={ratio}", ours, ref, note))
    x = features.clone().requires_grad_()

    def forward_backward(fn):
        return lambda: fn(x, rois, 7, 1.0, 2, True).sum().backward()

    rows.append(_row("roi_align 7×7 forward + backward",
                     time_call(forward_backward(roi_align), repeat=repeat),
                     time_call(forward_backward(tv.roi_align), repeat=repeat), note))
    boxes = _boxes(1000, g)
    scores = torch.rand(1000, generator=g)
    rows.append(_row("box_iou 1000×1000", time_call(lambda: box_iou(boxes, boxes), repeat=repeat),
                     time_call(lambda: tv.box_iou(boxes, boxes), repeat=repeat), "fp32"))
    kept = len(tv.nms(boxes, scores, 0.5))
    rows.append(_row("nms 1000 boxes, IoU > 0.5",
                     time_call(lambda: nms(boxes, scores, 0.5), repeat=repeat),
                     time_call(lambda: tv.nms(boxes, scores, 0.5), repeat=repeat),
                     f"{kept} kept; ours: blocked Cluster-NMS"))
    rows.extend(_memory_rows())
    return rows


# The large cases that used to exhaust memory, each measured in a fresh process: the rise of
# its peak resident memory (Linux VmHWM, reset just before the call) over the inputs' setup.
_MEMORY_CASES = {
    "roi_align, one 5000-px box at 1/4, sampling_ratio=-1, 32 channels": (
        "from coursekit.detection import roi_align as op; x = torch.randn(1, 32, 64, 64); "
        "r = torch.tensor([[0.0, 0, 0, 5000, 5000]])", "op(x, r, 7, 0.25, -1, False)", "701 MB"),
    "nms, 10 000 boxes": (
        "from coursekit.detection import nms as op; g = torch.Generator().manual_seed(0); "
        "c = torch.rand(10_000, 2, generator=g) * 1000; s = torch.rand(10_000, 2, generator=g) "
        "* 60 + 10; b = torch.cat([c - s / 2, c + s / 2], 1); p = torch.rand(10_000)",
        "op(b, p, 0.5)", "3434 MB"),
}
_PROBE = """
import sys, torch
torch.set_num_threads(1)
def mb(field):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(field + ":")) / 1024
exec(sys.argv[1])
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = mb("VmRSS")
exec(sys.argv[2])
print(f"{mb('VmHWM') - before:.0f}")
"""


def _memory_rows() -> list[dict]:
    """Peak-memory rows for the large cases (Linux only: they read /proc)."""
    import subprocess
    import sys

    if not sys.platform.startswith("linux"):
        return []
    rows = []
    for name, (setup, call, before) in _MEMORY_CASES.items():
        out = subprocess.run([sys.executable, "-c", _PROBE, setup, call], capture_output=True,
                             text=True, timeout=300)
        peak = f"{out.stdout.strip()} MB" if out.returncode == 0 else "failed"
        rows.append({"benchmark": f"peak memory: {name}", "ours": peak, "reference": "-",
                     "ratio": None, "note": f"rise over the inputs; {before} before bounding"})
    return rows
