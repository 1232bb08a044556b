"""Screenshot a demo's real window on a virtual display (Debian: xvfb, x11-apps), as in the README.

    python scripts/demo_screenshot.py face docs/demo-face.png [--after 60] [-- extra demo options]

Starts Xvfb, runs `wgnn demo KIND` in it, waits until the demo reports frame AFTER, dumps the window
with xwd, writes it as PNG, and prints the demo's own summary (frame rate and stage times in a window).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from xwd import read_xwd  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=("face", "selfie"))
    parser.add_argument("png")
    parser.add_argument("--after", type=int, default=60, help="frame to capture after (a multiple of 30)")
    args, extra = parser.parse_known_args()
    args.extra = [a for a in extra if a != "--"]  # more `wgnn demo` options
    read, write = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                            pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    display = ":" + os.read(read, 16).decode().strip()
    env = {**os.environ, "DISPLAY": display}
    env.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())
    try:
        with tempfile.NamedTemporaryFile("w+", suffix=".log") as log:
            app = subprocess.Popen([sys.executable, "-m", "wgnn", "demo", args.kind, "--frames", str(args.after + 30),
                                    *args.extra], env=env, stdout=log, stderr=subprocess.STDOUT)
            marker = f"frame {args.after}:"
            while marker not in Path(log.name).read_text() and app.poll() is None:
                time.sleep(0.1)
            shot = subprocess.run(["xwd", "-display", display, "-name", f"wgnn demo {args.kind}", "-silent"],
                                  capture_output=True, check=True)
            app.wait(timeout=600)
            print(Path(log.name).read_text())
    finally:
        xvfb.kill()
    from PIL import Image

    Image.fromarray(read_xwd(shot.stdout)).save(args.png, optimize=True)
    print(f"wrote {args.png}")
    return app.returncode


if __name__ == "__main__":
    sys.exit(main())
