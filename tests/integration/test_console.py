"""What `forensibench run` shows: one line per detector fitted and per detector scored (per set with
-v), warnings and failures marked, progress bars only on a terminal, and everything in RUN/log.txt."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading

import numpy as np
import pytest

from forensibench.api import registry
from forensibench.api.detector import Detector, NoParams, Training

FLOW = "clip-flow:backbone=tiny-random,batch_size=16,depth=2,epochs=1,hidden=8"
SPECS = [f"{FLOW},mode=N", f"{FLOW},mode=P"]
LABELS = ["clip-flow:mode=N", "clip-flow:mode=P"]  # the parameter that tells them apart
SETS = ["progan", "biggan"]
NUMBERS = re.compile(r"\d+(\.\d+)?")  # times and rates differ between two runs


def _images(root, key: str) -> int:
    """Images of a set of the synthetic replica, counted on disk (test/<set>/<category>/{0_real,1_fake})."""
    return sum(1 for p in (root / "test" / key).rglob("*.png"))


def _args(root, out, *extra):
    args = ["run", "--suite", "cnnspot19", "--data-root", root, "--datasets", ",".join(SETS), "--out", out]
    for spec in SPECS:
        args += ["--detector", spec]
    return [*args, "--bootstrap", "0", *extra]


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def runs(synth32_root, tmp_path_factory):
    """The same tiny run, by default and with -v (two run directories), and a rerun of the first."""
    from click.testing import CliRunner

    from forensibench.cli import main

    tmp = tmp_path_factory.mktemp("console")
    invoke = lambda *a: CliRunner().invoke(main, [str(x) for x in a], catch_exceptions=False)  # noqa: E731
    default = invoke(*_args(synth32_root, tmp / "default"))
    verbose = invoke(*_args(synth32_root, tmp / "verbose", "-v"))
    rerun = invoke(*_args(synth32_root, tmp / "default"))
    for res in (default, verbose, rerun):
        assert res.exit_code == 0, res.output
    return tmp, default, verbose, rerun


def test_by_default_one_line_per_detector_fitted_and_one_per_detector_scored(runs, synth32_root):
    _, default, _, _ = runs
    lines = _lines(default.stderr)
    n = sum(_images(synth32_root, k) for k in SETS)
    assert lines[0].startswith("device: cpu")
    expected = []
    for label in LABELS:
        expected += [
            rf"{re.escape(label)}: fitted in [\d.]+ s on \d+ natural \+ \d+ held-out images",
            rf"{re.escape(label)}: scored {len(SETS)} sets, {n} images in [\d.]+ s, [\d-]+ img/s, 0 failed",
        ]
    assert len(lines) == 1 + len(expected), lines  # nothing else: no line per set
    for line, pattern in zip(lines[1:], expected):
        assert re.fullmatch(pattern, line), (line, pattern)


def test_verbose_adds_one_line_per_scored_set(runs, synth32_root):
    _, default, verbose, _ = runs
    lines = _lines(verbose.stderr)
    for label in LABELS:
        for key in SETS:
            per_set = [x for x in lines if x.startswith(f"{label} / {key}: ")]
            assert len(per_set) == 1 and f": {_images(synth32_root, key)} images scored in" in per_set[0]
    assert {NUMBERS.sub("#", x) for x in _lines(default.stderr)} <= {NUMBERS.sub("#", x) for x in lines}
    for spec in map(registry.canonical, SPECS):  # which detector each label is, in full
        assert spec in verbose.stderr and spec not in default.stderr


def test_the_log_file_has_every_line_of_every_invocation(runs, synth32_root):
    tmp, default, _, rerun = runs
    text = (tmp / "default" / "log.txt").read_text()
    headers = [x for x in text.splitlines() if x.startswith("==== ")]
    # when, which version, the command line (here pytest's: the CLI ran in this process)
    assert len(headers) == 2 and all(
        re.fullmatch(r"==== \d{4}-\d\d-\d\dT\S+ forensibench \S+: .+ ====", h) for h in headers
    )
    first, second = text.split(headers[1])
    # the first invocation: every console line, the per-set lines of -v, each with a time and level
    for line in _lines(default.stderr):
        assert re.search(rf"^\S+ \S+ INFO +\d+ forensibench\.\S+: {re.escape(line)}$", first, re.M), line
    for label in LABELS:
        for key in SETS:
            per_set = rf"DEBUG +\d+ forensibench\.engine\.cells: {re.escape(label)} / {key}: \d+ images scored in"
            assert len(re.findall(per_set, first)) == 1, (label, key)
    # the second resumed: it said so, and the log says it after its own header
    skipped = f"{', '.join(LABELS)}: all {len(SETS)} sets already scored, skipped"  # one line for all of them
    assert _lines(rerun.stderr) == [_lines(default.stderr)[0], skipped]
    assert skipped in second
    assert "fitted in" not in second


class _NaNs(Detector):
    """Scores the first image NaN: one failed image per set, a warning."""

    name = "test-console-nans"
    family = "test"
    Params = NoParams
    training = Training.NONE
    threshold = "probability"

    def transform(self, train=False):
        from forensibench.data.transforms import TransformSpec

        return TransformSpec(crop=32)

    def fit(self, train):
        return self

    def score(self, images):
        s = np.linspace(0.1, 0.9, len(images))
        s[0] = np.nan
        return s


class _Fails(_NaNs):
    name = "test-console-fails"

    def fit(self, train):
        raise ZeroDivisionError("division by zero")


def test_failures_and_failed_images_stand_out_and_the_traceback_is_in_the_log(synth32_root, tmp_path, invoke):
    nans, fails = registry.register(_NaNs), registry.register(_Fails)
    try:
        res = invoke(
            "run", "--suite", "cnnspot19", "--data-root", synth32_root, "--datasets", ",".join(SETS),
            "--out", tmp_path / "run", "--detector", nans.name, "--detector", fails.name, "--bootstrap", "0",
        )  # fmt: skip
    finally:
        registry.unregister(nans.name)
        registry.unregister(fails.name)
    assert res.exit_code == 1
    lines = _lines(res.stderr)
    n = sum(_images(synth32_root, k) for k in SETS)
    (scored,) = [x for x in lines if x.startswith(f"warning: {nans.name}: scored ")]
    assert scored.startswith(f"warning: {nans.name}: scored {len(SETS)} sets, {n} images in ")
    assert scored.endswith(f", {len(SETS)} failed")  # one NaN per set
    (error,) = [x for x in lines if x.startswith("error: ")]
    assert error.startswith(f"error: {fails.name}: FAILED: ZeroDivisionError while fitting: division by zero")
    assert "Traceback" not in res.output  # on the console one sentence; the traceback is in the log file
    log = (tmp_path / "run" / "log.txt").read_text()
    assert re.search(r"ERROR +\d+ forensibench\.engine\.cells: test-console-fails: FAILED: ", log)
    assert "Traceback (most recent call last)" in log and "raise ZeroDivisionError" in log


def _run_with_stderr_on(terminal: bool, args: list[str], env: dict) -> str:
    """Run the CLI in a subprocess whose stderr is a pseudo-terminal (or a pipe); its stderr, as bytes decoded."""
    import fcntl
    import pty
    import struct
    import termios

    cmd = [sys.executable, "-m", "forensibench.cli", *map(str, args)]
    if not terminal:
        return subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stderr
    primary, secondary = pty.openpty()
    # an 80x24 window: in a pty without a size (0x0) tqdm draws bars of width 0, i.e. nothing
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    chunks: list[bytes] = []

    def read():
        while True:
            try:
                data = os.read(primary, 4096)
            except OSError:  # EIO: the other end is closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=secondary, env=env, check=True)
    finally:
        os.close(secondary)
        reader.join(timeout=30)
        os.close(primary)
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
def test_progress_bars_only_when_stderr_is_a_terminal(synth32_root, tmp_path):
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "80"}
    on_pipe = _run_with_stderr_on(False, _args(synth32_root, tmp_path / "pipe"), env)
    on_terminal = _run_with_stderr_on(True, _args(synth32_root, tmp_path / "tty"), env)
    bar = re.compile(r"\r.*\d+/\d+ \[")  # tqdm's redraw: "\rprogan:  50%|#####     | 4/8 [00:00<..."
    assert bar.search(on_terminal), on_terminal  # the control: bars are drawn on a terminal
    assert not bar.search(on_pipe) and "\r" not in on_pipe, on_pipe
    # the same lines either way (times aside), written between the bars' redraws
    drawn = NUMBERS.sub("#", on_terminal)
    for line in _lines(NUMBERS.sub("#", on_pipe)):
        assert re.search(rf"(^|\r|\n){re.escape(line)}\r?\n", drawn), line
