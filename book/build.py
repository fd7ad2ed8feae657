"""Build the HTML book from a clean slate: ``python book/build.py`` (``make book`` runs it).

Executes every notebook listed in ``book/_toc.yml`` (a failing cell fails the build), treats
Sphinx warnings as errors, and writes ``book/_build/html``. The source folder is the repository
root, so the notebooks are rendered from where they live.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "book" / "_build"


def main() -> int:
    shutil.rmtree(BUILD, ignore_errors=True)
    env = {**os.environ, "MMTUTOR_PROGRESS": "0", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    command = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(ROOT),
               "--config", str(ROOT / "book" / "_config.yml"), "--toc", str(ROOT / "book" / "_toc.yml"),
               "--path-output", str(ROOT / "book"), "--warningiserror", "--keep-going", "--all"]
    done = subprocess.run(command, cwd=ROOT, env=env)
    if done.returncode != 0:
        print("book build FAILED (see the warnings and errors above)", file=sys.stderr)
        return done.returncode
    print(f"\nThe book is ready: open file://{BUILD / 'html' / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
