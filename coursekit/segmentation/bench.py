"""``coursekit bench segmentation``: sliding window vs the same weights run convolutionally.

One row per image size: the time of ``sliding_window_segment`` (one patch per
pixel) as "ours", ``fcn_segment`` (one pass over the padded image) as
"reference", the ratio (how many times faster the FCN is), and the largest
difference between the two score maps (they are the same computation).
"""

from __future__ import annotations

from coursekit.segmentation.sliding_window import PatchClassifier, time_sliding_vs_fcn


def bench(quick: bool = False) -> list[dict]:
    """Rows ``{"benchmark", "ours", "reference", "ratio", "note"}`` for 32, 64, 128 px.

    ``quick``: 32 and 64 px only, one repeat.
    """
    sizes = (32, 64) if quick else (32, 64, 128)
    model = PatchClassifier()
    rows = []
    for row in time_sliding_vs_fcn(sizes, model, repeat=1 if quick else 3, threads=2):
        rows.append({
            "benchmark": f"sliding window vs FCN, {row['size']}x{row['size']} "
                         f"(P={model.patch_size})",
            "ours": f"{row['sliding_s'] * 1e3:.1f} ms sliding",
            "reference": f"{row['fcn_s'] * 1e3:.2f} ms FCN",
            "ratio": row["speedup"],
            "note": f"FCN {row['speedup']:.0f}x faster; "
                    f"identical: max |diff| = {row['max_abs_diff']:.1e}",
        })
    return rows
