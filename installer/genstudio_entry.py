"""The bundled executable's entry point: the same `genstudio` command as the pip-installed one."""

import multiprocessing
import sys

from genstudio.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
