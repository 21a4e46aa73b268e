"""Threads on a shared machine: the README's `elbo train` command (8x8 digits, IWAE with K = 5, batches of 100) with
one torch thread, the commands' default since issue 25, and with one thread a core (torch's own default), as the
machine is (``quiet``: nothing of the benchmark's own beside the command; other programs' load is the header's load
average) and while a process of the benchmark's holds one core busy (``busy``).

Each contestant is the command itself in a process of its own (``python -m elbo train ... --threads N``); its row is
the median seconds per epoch over the epochs after the first (``metrics.jsonl``'s ``seconds``: training and
validation, without the process's start), its training examples per second, and the whole command's wall time. In
the ``busy`` case a Python loop spins in another process for as long as the command runs, as another program would.

    python benchmarks/threads.py --repeats 3
    python benchmarks/threads.py --quick                              # 2 epochs, one repetition
    python benchmarks/threads.py --render benchmarks/results/threads.json

On the benchmark harness (``_harness.py``): ``--threads`` (the harness's own, 1) does not apply: each contestant sets
its own; the peak RSS is the harness's process, not the command's (``command_rss_mib`` is the command's).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _harness import REPO, Benchmark, Column, Contestant, Setting, main  # beside this script

CORES = os.cpu_count() or 1
COMMAND = ["--data", "digits", "--objective", "iwae", "--k", "5", "--batch-size", "100"]  # the README's


def load(case: str, settings) -> str:
    return case


def train(threads: int):
    def run(case: str, settings) -> dict:
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if case == "busy" else None
        try:
            with tempfile.TemporaryDirectory() as folder:
                command = [sys.executable, "-m", "elbo", "train", *COMMAND, "--epochs", str(settings.epochs),
                           "--threads", str(threads), "--quiet", "--out", str(Path(folder) / "run")]
                environment = {**os.environ, "PYTHONPATH": str(REPO / "src")}
                start = time.perf_counter()
                process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL)
                _, status, usage = os.wait4(process.pid, 0)  # the command's own peak memory
                wall = time.perf_counter() - start
                process.returncode = os.waitstatus_to_exitcode(status)
                if process.returncode != 0:
                    raise subprocess.CalledProcessError(process.returncode, command)
                metrics = (Path(folder) / "run" / "metrics.jsonl").read_text()
                epochs = [json.loads(line) for line in metrics.splitlines()]
        finally:
            if spinner is not None:
                spinner.kill()
                spinner.wait()
        later = epochs[1:] or epochs
        return {"threads": threads, "seconds_per_epoch": statistics.median(e["seconds"] for e in later),
                "examples_per_sec": statistics.median(e["examples_per_sec"] for e in later), "wall_s": wall,
                "command_rss_mib": usage.ru_maxrss / 1024}
    return run


BENCHMARK = Benchmark(
    name="threads",
    description="elbo train with one torch thread and with one a core, on a quiet machine and beside a busy process",
    settings={"epochs": Setting(5, "epochs of each command", quick=2)},
    cases=lambda settings: ("quiet", "busy"),
    load=load,
    case="machine",
    contestants=[Contestant("--threads 1 (the default)", train(1), key="one"),
                 Contestant(f"--threads {CORES} (torch's default: a thread a core)", train(CORES), key="all")],
    columns=[Column("s / epoch", "seconds_per_epoch", ".3f"), Column("examples / s", "examples_per_sec", ".0f"),
             Column("command wall s", "wall_s", ".1f"), Column("command peak MiB", "command_rss_mib", ".0f")],
    repeats=3,
)

if __name__ == "__main__":
    sys.exit(main(BENCHMARK))
