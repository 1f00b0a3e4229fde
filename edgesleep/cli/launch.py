"""``python -m edgesleep.cli.launch [train|distill] OPTIONS``: the ``train`` (default) or
``distill`` verb, as ``torchrun`` starts it once per rank::

    torchrun --standalone --nproc-per-node 4 -m edgesleep.cli.launch --data DIR --channel C ...

Ranks other than 0 print nothing and log only warnings.
"""

from __future__ import annotations

import os
import sys

from edgesleep.cli import app


def main() -> None:
    args = sys.argv[1:]
    if not args or args[0] not in ("train", "distill"):
        args = ["train", *args]
    if int(os.environ.get("RANK", "0")) != 0:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (for the life of the process)
    app(args, prog_name="python -m edgesleep.cli.launch")


if __name__ == "__main__":
    main()
