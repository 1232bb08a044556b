"""The face demo: `python demos/face.py [options]` is `wgnn demo face [options]` (see `--help`)."""

import sys

from wgnn.cli import main

if __name__ == "__main__":
    sys.exit(main(["demo", "face", *sys.argv[1:]]))
