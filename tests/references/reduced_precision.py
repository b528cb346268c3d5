"""The float16 / bfloat16 yardstick shared by the reduced-precision tests.

``ours`` and ``ref`` are in the reduced dtype (``ref``: torch's own op in that dtype),
``ref_hi`` is torch in float32 or float64 on the same, already rounded, inputs. With
``eps = torch.finfo(dtype).eps``:

* ``|ours - ref_hi| <= eps * |ref_hi| + 1e-4``: half an ulp of the final rounding, plus
  float32 noise;
* ``max |ours - ref| <= max |ref_hi - ref| + eps * max |ref_hi|``: as close to
  torch-in-that-dtype as torch's own higher-precision result is, plus one ulp.

The second check measures us against torch's low-precision kernel, so it only means
something where that kernel is sound. On some CPUs torch 2.14's bfloat16 ``grid_sample``
returned NaN where the float32 truth is finite (CI, stop 17: an AMX / AVX512-BF16 path we
could not reproduce here). Where ``ref`` is not finite but ``ref_hi`` is, torch's kernel
is what failed: the first check alone then holds us to the truth.
"""

import torch
from torch.testing import assert_close


def assert_as_close_as_torch(ours, ref, ref_hi):
    dtype = ref.dtype
    assert ours.dtype == dtype and ours.shape == ref.shape and ours.device == ref.device
    if not ref.numel():
        return
    eps = torch.finfo(dtype).eps
    ours, ref, ref_hi = (t.detach().cpu().double() for t in (ours, ref, ref_hi))
    assert_close(ours, ref_hi, rtol=eps, atol=1e-4)
    if not bool(torch.isfinite(ref).all()) and bool(torch.isfinite(ref_hi).all()):
        return  # torch's reduced-precision kernel broke, not ours (see the module doc)
    ours_err = (ours - ref).abs().max()
    torch_err = (ref_hi - ref).abs().max()
    assert ours_err <= torch_err + eps * ref_hi.abs().max(), (float(ours_err), float(torch_err))
