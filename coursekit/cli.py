"""The ``coursekit`` command: lab | test | doctor | train NAME | bench | student."""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from coursekit.registry import TRAINERS

REPO = Path(__file__).resolve().parent.parent


def _resolve(target: str):
    module, _, func = target.partition(":")
    return getattr(importlib.import_module(module), func)


def lessons_dir() -> Path:
    return REPO / "lessons"


def cmd_doctor(args: argparse.Namespace) -> int:
    import torch

    from coursekit import __version__
    from coursekit.checkpoints import CheckpointError, checkpoint_dir, read_manifest, verify
    from coursekit.device import describe_device, pick_device

    ok = True
    print(f"coursekit   {__version__}")
    print(f"python      {platform.python_version()} ({sys.executable})")
    for name in ["torch", "torchvision", "numpy", "matplotlib", "jupyterlab", "ipywidgets", "nbval"]:
        try:
            version = importlib.import_module(name).__version__
        except ImportError:
            version = "not installed" + (" (needed: pip install -e .[lab,test])" if name in {"jupyterlab", "nbval"} else "")
            ok = ok and name not in {"torch", "torchvision", "numpy", "matplotlib"}
        print(f"{name:<11} {version}")
    try:
        device = pick_device()
        print(f"device      {describe_device(device)}  (override with COURSEKIT_DEVICE)")
        torch.ones(2, device=device).sum().item()
    except ValueError as err:
        print(f"device      ERROR: {err}")
        ok = False
    manifest = read_manifest()
    print(f"checkpoints {checkpoint_dir()}  ({len(manifest)} in manifest)")
    for name in sorted(manifest):
        try:
            path = verify(name)
            print(f"  ok        {name:<14} {path.stat().st_size / 1e6:6.2f} MB  sha256 {manifest[name]['sha256'][:12]}")
        except CheckpointError as err:
            print(f"  FAILED    {name:<14} {err}")
            ok = False
    for name in sorted(set(TRAINERS) - set(manifest)):  # a lesson that needs it will say so too
        print(f"  missing   {name:<14} not trained yet: coursekit train {name}")
    notebooks = sorted(lessons_dir().glob("[0-9][0-9]_*.ipynb")) if lessons_dir().is_dir() else []
    print(f"lessons     {len(notebooks)} found in {lessons_dir()}")
    for nb in notebooks:
        print(f"  {nb.name}")
    print("status      " + ("all good" if ok else "problems found (see above)"))
    return 0 if ok else 1


def cmd_train(args: argparse.Namespace) -> int:
    from coursekit.registry import TRAINERS
    from coursekit.seed import seed_everything

    if args.name not in TRAINERS:
        known = ", ".join(sorted(TRAINERS)) or "none yet"
        print(f"error: unknown model {args.name!r}; known: {known}", file=sys.stderr)
        return 2
    seed_everything(args.seed)
    out = Path(args.out) if args.out else None
    metrics = _resolve(TRAINERS[args.name])(out, args.seed, args.quick)
    print(f"trained {args.name}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from coursekit.bench import run_benchmarks

    return run_benchmarks(names=args.only, quick=args.quick, markdown=args.markdown, lessons=args.lessons)


def _script(name: str, extra: list[str]) -> int:
    script = REPO / "scripts" / name
    if not script.exists():
        print(f"error: {script} not found (coursekit {name} needs a checkout of the repository)", file=sys.stderr)
        return 2
    return subprocess.call(["bash", str(script), *extra])


def cmd_lab(args: argparse.Namespace) -> int:
    if shutil.which("jupyter") is None and not (Path(sys.executable).parent / "jupyter").exists():
        print("error: JupyterLab is not installed: pip install -e '.[lab]' or run scripts/lab", file=sys.stderr)
        return 2
    jupyter = str(Path(sys.executable).parent / "jupyter")
    cmd = [jupyter, "lab", f"--notebook-dir={lessons_dir()}", "--ServerApp.ip=127.0.0.1", *args.extra]
    print("starting JupyterLab on 127.0.0.1 with token authentication:", " ".join(cmd))
    return subprocess.call(cmd)


def cmd_test(args: argparse.Namespace) -> int:
    return _script("test", args.extra)


def cmd_student(args: argparse.Namespace) -> int:
    from coursekit.exercises.student import write_student_notebooks

    written = write_student_notebooks(lessons_dir(), Path(args.out) if args.out else None, force=args.force)
    for line in written:
        print(line)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coursekit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("doctor", help="versions, device, checkpoints, lessons").set_defaults(func=cmd_doctor)
    lab = sub.add_parser("lab", help="open JupyterLab on lessons/ (127.0.0.1, token auth)")
    lab.add_argument("extra", nargs=argparse.REMAINDER)
    lab.set_defaults(func=cmd_lab)
    test = sub.add_parser("test", help="run the whole test suite (scripts/test)")
    test.add_argument("extra", nargs=argparse.REMAINDER)
    test.set_defaults(func=cmd_test)
    train = sub.add_parser("train", help="train a lesson model and write its checkpoint")
    train.add_argument("name")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--quick", action="store_true", help="a few steps only (smoke test)")
    train.add_argument("--out", help="folder for the checkpoint (default: data/checkpoints)")
    train.set_defaults(func=cmd_train)
    bench = sub.add_parser("bench", help="benchmark table (ours vs the reference)")
    bench.add_argument("--only", nargs="*", help="benchmark names to run")
    bench.add_argument("--quick", action="store_true")
    bench.add_argument("--markdown", action="store_true", help="print a Markdown table")
    bench.add_argument("--lessons", action="store_true", help="also time every lesson from a fresh kernel")
    bench.set_defaults(func=cmd_bench)
    student = sub.add_parser("student", help="write exercise versions of the lessons (never overwrites your work)")
    student.add_argument("--out", help="folder (default: lessons/student)")
    student.add_argument("--force", action="store_true", help="replace changed notebooks, keeping a timestamped backup")
    student.set_defaults(func=cmd_student)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
