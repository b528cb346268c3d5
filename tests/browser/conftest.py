"""Make the shared browser helpers (browser_lab.py) importable by the tests in this folder
(pytest runs with --import-mode=importlib, which does not put test folders on sys.path)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
