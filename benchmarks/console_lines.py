"""Lines a command shows in a terminal before its table: what a newcomer reads before the result.

Runs the command in a detached tmux window of COLUMNSxLINES (default 80x24: a real pseudo-terminal,
so progress bars draw and redraw as they do for a person), waits for it to end, then reads the
window's whole history as the terminal renders it (`tmux capture-pane -S -`: long lines wrapped,
carriage-return redraws collapsed into what stays on screen) and counts the lines before the first
line that matches MARKER (default: the header row of a Markdown table, ``| ...``).

    python benchmarks/console_lines.py -- forensibench demo --out /tmp/demo
    python benchmarks/console_lines.py --keep /tmp/demo.txt -- forensibench demo --out /tmp/demo

Needs tmux. Not a speed benchmark: the count is the figure.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
import uuid

DONE = "__console_lines_done__"


def rendered_output(command: list[str], columns: int, lines: int, timeout_s: float) -> str:
    """The history of a `columns`x`lines` tmux window that ran `command`, as rendered (one screen line a line)."""
    # a tmux server of its own (-L): it starts with this process's environment (the venv's PATH)
    conf = tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False)
    conf.write("set-option -g history-limit 100000\n")  # applies to panes made after it: set before the session
    conf.close()
    tmux = ["tmux", "-L", f"console-lines-{uuid.uuid4().hex[:8]}", "-f", conf.name]
    shell = f"{shlex.join(command)}; echo {DONE}; sleep 3600"
    subprocess.run([*tmux, "new-session", "-d", "-x", str(columns), "-y", str(lines), shell], check=True)
    try:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            time.sleep(1.0)
            text = subprocess.run(
                [*tmux, "capture-pane", "-p", "-S", "-", "-E", "-"], check=True, capture_output=True, text=True
            ).stdout
            if re.search(rf"^{DONE}\s*$", text, re.M):
                return text[: text.index(DONE)]
        raise TimeoutError(f"{shlex.join(command)} did not finish in {timeout_s:g} s")
    finally:
        subprocess.run([*tmux, "kill-server"], check=False)
        os.unlink(conf.name)


def lines_before(text: str, marker: str) -> int:
    """Screen lines before the first line that matches `marker`."""
    for i, row in enumerate(text.splitlines()):
        if re.search(marker, row):
            return i
    raise ValueError(f"no line matches {marker!r}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--columns", type=int, default=80)
    ap.add_argument("--lines", type=int, default=24)
    ap.add_argument("--marker", default=r"^\|", help="regex of the first line of the result (default: a table row)")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds")
    ap.add_argument("--keep", default=None, help="write the rendered output to this file")
    ap.add_argument("command", nargs="+")
    args = ap.parse_args()
    text = rendered_output(args.command, args.columns, args.lines, args.timeout)
    if args.keep:
        with open(args.keep, "w") as f:
            f.write(text)
    n = lines_before(text, args.marker)
    print(f"{n} lines before the table in a {args.columns}x{args.lines} terminal: {shlex.join(args.command)}")
    sys.exit(0)


if __name__ == "__main__":
    main()
