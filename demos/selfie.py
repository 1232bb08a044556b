"""The selfie demo: `python demos/selfie.py [options]` is `wgnn demo selfie [options]` (see `--help`)."""

import sys

from wgnn.cli import main

if __name__ == "__main__":
    sys.exit(main(["demo", "selfie", *sys.argv[1:]]))
