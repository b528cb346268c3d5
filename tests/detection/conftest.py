"""Shared by the detection tests: peak memory of the calls that used to explode.

torch's allocations are invisible to ``tracemalloc``; the process's resident memory
sees them all. One fresh Python process measures every case below (importing torch
once): on Linux, after the setup, freed memory is given back (``malloc_trim``) and the
high-water mark ``VmHWM`` is reset to the current RSS (``/proc/self/clear_refs``) just
before the call, and read back after it. Elsewhere each case gets
its own process and ``getrusage(...).ru_maxrss`` (which may under-count).
"""

import json
import os
import subprocess
import sys

import pytest

# name -> (setup, measured call). Each setup warms the code up on a small input first.
MEMORY_CASES = {
    # the probe is not blind: a 200 MB tensor must show
    "probe": ("", "big = torch.ones(50_000_000)"),
    # one 5000-px box at 1/4 with adaptive sampling: 179 x 179 samples per bin
    "roi_align": ("""
        from coursekit.detection import roi_align
        x = torch.randn(1, 32, 64, 64)
        rois = torch.tensor([[0.0, 0.0, 0.0, 5000.0, 5000.0]])
        roi_align(x, torch.tensor([[0.0, 0, 0, 20, 20]]), 7, 0.25, -1, False)
    """, "out = roi_align(x, rois, 7, 0.25, -1, False)"),
    # the same box for roi_pool on a 256 x 256 map: bins of 179 x 179 cells
    "roi_pool": ("""
        from coursekit.detection import roi_pool
        x = torch.randn(1, 32, 256, 256)
        rois = torch.tensor([[0.0, 0.0, 0.0, 5000.0, 5000.0]])
        roi_pool(x, torch.tensor([[0.0, 0, 0, 20, 20]]), 7, 0.25)
    """, "out = roi_pool(x, rois, 7, 0.25)"),
    # 10 000 detections: ~34 jittered boxes on each of 300 objects
    "nms": ("""
        from coursekit.detection import nms
        g = torch.Generator().manual_seed(0)
        centres = torch.rand(300, 2, generator=g) * 1000
        sizes = torch.rand(300, 2, generator=g) * 60 + 10
        noise = torch.randn(10_000, 2, 2, generator=g)
        c = centres.repeat_interleave(34, 0)[:10_000] + 3 * noise[:, 0]
        s = sizes.repeat_interleave(34, 0)[:10_000] * (1 + 0.1 * noise[:, 1])
        boxes = torch.cat([c - s / 2, c + s / 2], 1)
        scores = torch.rand(10_000, generator=g)
        nms(boxes[:100], scores[:100], 0.5)
    """, "keep = nms(boxes, scores, 0.5)"),
}

_PROBE = """
import ctypes, gc, json, resource, sys, textwrap
import torch
torch.set_num_threads(1)
cases = json.loads(sys.argv[1])

def status_mb(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024

def measure(setup, call):
    names = {"torch": torch}
    exec(textwrap.dedent(setup), names)
    gc.collect()
    if sys.platform.startswith("linux"):  # give freed memory back, so reuse cannot hide
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    try:  # Linux: reset the high-water mark to the current RSS
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before, peak = status_mb("VmRSS"), lambda: status_mb("VmHWM")
    except OSError:  # elsewhere: the process's peak so far
        scale = 2**20 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
        peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale
        before = peak()
    exec(textwrap.dedent(call), names)
    return peak() - before

print("PEAKS", json.dumps({name: measure(*case) for name, case in cases.items()}))
"""


def _run(cases: dict, timeout: float = 300.0) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(cases)], env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    line = [s for s in done.stdout.splitlines() if s.startswith("PEAKS ")][-1]
    return json.loads(line[len("PEAKS "):])


@pytest.fixture(scope="session")
def peak_memory_mb() -> dict:
    """``{case: MB}``: how far each call of ``MEMORY_CASES`` raised the resident memory."""
    pytest.importorskip("resource")
    if os.access("/proc/self/clear_refs", os.W_OK):
        return _run(MEMORY_CASES)  # one process, the peak reset before each call
    peaks = {}
    for name, case in MEMORY_CASES.items():
        peaks.update(_run({name: case}))
    return peaks
