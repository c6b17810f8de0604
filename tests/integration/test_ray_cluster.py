"""The Ray executor against real clusters started with `ray start --head` (issue 14, item 8).

Each cluster runs in a network namespace of its own whose only interface is the loopback one
(``unshare -rn``; `ray start` binds every interface it sees and resolves ``--node-ip-address
127.0.0.1`` to the machine's address, so only a namespace keeps it on 127.0.0.1), started from
another working directory than the run's. Every process in the namespace (the cluster, its workers,
the runs) is killed when the module's tests are done. HOME points at an empty folder: no Ray token of
the user's is read, none is written.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pandas as pd
import pytest

pytestmark = pytest.mark.slow
pytest.importorskip("ray")

FREQSPEC = "freqspec:pretrained=false,epochs=1,crop=32"
PORT = 6379  # a namespace of the cluster's own: every port is free there


class Netns:
    """A network namespace with only `lo` up, held by a sleeping process; commands enter it with nsenter."""

    def __init__(self):
        self.holder = subprocess.Popen(
            ["unshare", "-rn", "sh", "-c", "ip link set lo up && echo up && exec sleep 86400"],
            stdout=subprocess.PIPE,
            text=True,
        )
        if self.holder.stdout.readline().strip() != "up":
            raise RuntimeError("could not bring up lo in a new network namespace")
        self.ns = os.readlink(f"/proc/{self.holder.pid}/ns/net")
        self.prefix = ["nsenter", "-t", str(self.holder.pid), "-U", "-n", "--preserve-credentials"]

    def run(self, args: list, cwd, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*self.prefix, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
        )

    def members(self) -> list[int]:
        pids = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/ns/net") == self.ns:
                    pids.append(int(pid))
        return pids

    def kill_all(self) -> None:
        """SIGKILL every process in the namespace (all started here: the holder, Ray's daemons and workers)."""
        for _ in range(50):
            pids = self.members()
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
        self.holder.wait(timeout=10)


def _namespaces_work() -> bool:
    if not (shutil.which("unshare") and shutil.which("nsenter") and shutil.which("ip")):
        return False
    return subprocess.run(["unshare", "-rn", "ip", "link", "set", "lo", "up"], capture_output=True).returncode == 0


def _env(home, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    return {**env, "HOME": str(home), "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1", **extra}


def _start_cluster(tmp_path_factory, **auth):
    """(namespace, address, home) of a one-node cluster started by `ray start --head` in a folder of its own."""
    if not _namespaces_work():
        pytest.skip("needs unshare -rn, nsenter and ip (user and network namespaces)")
    base = tmp_path_factory.mktemp("ray-cluster")
    (base / "cluster-cwd").mkdir()
    (base / "home").mkdir()
    temp = tempfile.mkdtemp(prefix="fbray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    netns = Netns()
    started = netns.run(
        [
            sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--node-ip-address", "127.0.0.1",
            "--port", PORT, "--num-cpus", 2, "--disable-usage-stats", "--include-dashboard=false", "--temp-dir", temp,
        ],
        cwd=base / "cluster-cwd",
        env=_env(base / "home", **auth),
        timeout=180,
    )  # fmt: skip
    if started.returncode != 0:
        netns.kill_all()
        pytest.fail(f"ray start failed:\n{started.stdout}\n{started.stderr}")
    return netns, f"127.0.0.1:{PORT}", base / "home", temp


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    netns, address, home, temp = _start_cluster(tmp_path_factory, RAY_AUTH_MODE="disabled")
    yield netns, address, home
    netns.kill_all()
    shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def token_cluster(tmp_path_factory):
    token = secrets.token_hex(16)
    netns, address, home, temp = _start_cluster(tmp_path_factory, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    yield netns, address, home, token
    netns.kill_all()
    shutil.rmtree(temp, ignore_errors=True)


def _run_args(out: str, *extra) -> list:
    return [
        sys.executable, "-m", "forensibench.cli", "run", "--suite", "cnnspot19", "--data-root", "data",
        "--detector", FREQSPEC, "--out", out, "--datasets", "progan,stargan", "--bootstrap", 20, "--quiet",
        "--workers", 0, *extra,
    ]  # fmt: skip


def _workdir(tmp_path, data):
    """The folder the run is launched from: its data as the relative path ``data``."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "data").symlink_to(data)
    return work


def _metrics(path) -> pd.DataFrame:
    return pd.read_csv(path / "metrics.csv").sort_values(["detector", "dataset"]).reset_index(drop=True)


def test_relative_paths_on_a_cluster_started_elsewhere(cluster, synth32_root, tmp_path):
    netns, address, home = cluster
    work = _workdir(tmp_path, synth32_root)
    env = _env(home, FORENSIBENCH_CACHE_DIR=str(tmp_path / "cache"))
    ray_run = netns.run(_run_args("runs/ray", "--executor", "ray", "--ray-address", address), cwd=work, env=env)
    assert ray_run.returncode == 0, ray_run.stdout + ray_run.stderr
    local = netns.run(_run_args("runs/local"), cwd=work, env=env)
    assert local.returncode == 0, local.stdout + local.stderr
    pd.testing.assert_frame_equal(_metrics(work / "runs/ray"), _metrics(work / "runs/local"), check_exact=True)
    info = json.loads((work / "runs/ray/run.json").read_text())
    assert info["executor"] == "ray" and info["failed_detectors"] == {}


def test_a_cluster_that_refuses_the_connection_is_one_sentence(token_cluster, synth32_root, tmp_path):
    netns, address, home, token = token_cluster
    work = _workdir(tmp_path, synth32_root)
    # no token: Ray retries, then gives up (after 3 s here instead of about 20)
    env = _env(home, FORENSIBENCH_CACHE_DIR=str(tmp_path / "cache"), RAY_gcs_server_port_wait_time_s="3")
    refused = netns.run(_run_args("runs/ray", "--executor", "ray", "--ray-address", address), cwd=work, env=env)
    output = refused.stdout + refused.stderr
    assert refused.returncode == 2, output
    assert "Traceback" not in output
    last = output.strip().splitlines()[-1]
    assert last.startswith("Error: ") and address in last and "RAY_AUTH_TOKEN" in last
    assert json.loads((work / "runs/ray/run.json").read_text())["status"] == "failed"
    # the remedy the sentence names works
    env = {**env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    accepted = netns.run(_run_args("runs/ray", "--executor", "ray", "--ray-address", address), cwd=work, env=env)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
