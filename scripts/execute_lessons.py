"""Execute lessons in place the way nbval checks them, then strip widget state.

    .venv/bin/python scripts/execute_lessons.py lessons/02_upsampling.ipynb [...]
    .venv/bin/python scripts/execute_lessons.py --all

One thread (OMP_NUM_THREADS=1), a fresh kernel per notebook, outputs kept,
``metadata.widgets`` and execution timing metadata removed, kernelspec python3.
Prints each notebook's wall time.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"
os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
os.environ["TQDM_DISABLE"] = "1"
os.environ["PYTHONHASHSEED"] = "0"
os.environ.pop("MPLBACKEND", None)

import nbformat  # noqa: E402

from coursekit.exercises.kernel import notebook_client  # noqa: E402

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def clean(nb) -> None:
    nb.metadata.pop("widgets", None)
    nb.metadata["kernelspec"] = KERNELSPEC
    nb.metadata.setdefault("language_info", {"name": "python"})
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("ExecuteTime", None)
        if cell.cell_type == "code":
            for out in cell.get("outputs", []):
                data = out.get("data", {})
                data.pop("application/vnd.jupyter.widget-view+json", None)


def execute(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    client = notebook_client(nb, timeout=300, path=str(path.parent))
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    clean(nb)
    nbformat.write(nb, path)
    return seconds


def main(argv: list[str]) -> int:
    root = Path(__file__).resolve().parent.parent / "lessons"
    paths = (
        sorted(root.glob("[0-9][0-9]_*.ipynb")) if argv == ["--all"] else [Path(a) for a in argv]
    )
    if not paths:
        print(__doc__)
        return 2
    for path in paths:
        print(f"{path.name}: {execute(path):.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
