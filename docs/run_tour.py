"""Run the README's five-minute tour as it is written (CI runs it): the ``bash`` blocks
between ``<!-- tour -->`` and ``<!-- /tour -->``, in order, in one shell that stops at the
first failure, from the repository root, with ``runs/tour/`` emptied first.

Run: ``python docs/run_tour.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def tour_script(readme: Path = ROOT / "README.md") -> str:
    text = readme.read_text()
    tour = text[text.index("<!-- tour -->") : text.index("<!-- /tour -->")]
    blocks = re.findall(r"```bash\n(.*?)```", tour, flags=re.S)
    if not blocks:
        raise SystemExit("README.md: no bash blocks in the tour")
    return "set -euo pipefail\n" + "\n".join(blocks)


def main() -> int:
    shutil.rmtree(ROOT / "runs" / "tour", ignore_errors=True)
    (ROOT / "runs" / "tour").mkdir(parents=True)
    script = tour_script()
    print(script, flush=True)
    return subprocess.run(["bash", "-c", script], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main())
