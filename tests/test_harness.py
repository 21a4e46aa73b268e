"""The benchmark harness (benchmarks/_harness.py): contestants chosen by --only/--skip, interleaved repetitions in
seeded shuffled orders, a missing package recorded as a skipped row, failures recorded, settings from the command
line, and the table of a fresh run equal to the one --render prints from its JSON."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import _harness as harness  # noqa: E402  (beside the benchmarks, not a package)
from _harness import Benchmark, Column, Contestant, Setting  # noqa: E402


@pytest.fixture(autouse=True)
def no_thread_settings(monkeypatch):
    """The harness sets torch's and the BLAS pools' threads for the whole process: not in the test process."""
    calls = []
    monkeypatch.setattr(harness, "set_threads", calls.append)
    return calls


def toy(log: list, **more) -> Benchmark:
    """A benchmark of three contestants on two cases; each run appends (case, name, repeat) to ``log``."""

    def contestant(name, value, **options):
        def run(data, settings):
            log.append((data["case"], name))
            if value is None:
                raise RuntimeError("this contestant fails\nsecond line")
            return {"value": value * settings.scale, "seconds": 0.5}

        return Contestant(name, run, **options)

    return Benchmark(
        name="toy", description="a toy benchmark", case="dataset",
        cases=lambda settings: settings.datasets, load=lambda case, settings: {"case": case},
        settings={"scale": Setting(10, "a factor", quick=2), "datasets": Setting(["a", "b"], "data sets"),
                  "constant": 3},
        contestants=[contestant("first", 1.0, key="one"), contestant("second", 2.0),
                     contestant("peer", 3.0, packages=("no-such-distribution-here",))],
        columns=[Column("value", "value", ".1f"), Column("s", "seconds", ".2f")], **more)


def test_order_is_declared_for_one_run_and_seeded_shuffles_for_repetitions():
    names = list("abcdef")
    assert harness.order(names, 0, 1) == names
    orders = [harness.order(names, r, 4) for r in range(4)]
    assert all(sorted(o) == names for o in orders)
    assert len({tuple(o) for o in orders}) > 1  # shuffled, not one order four times
    assert orders == [harness.order(names, r, 4) for r in range(4)]  # seeded: the same orders again


def test_only_and_skip_by_key_or_name(tmp_path):
    bench = toy([])
    settings = harness.resolve(bench, harness.parser_of(bench).parse_args([]))
    pick = [c.name for c in harness.choose(bench.contestants, ["ONE", "peer"], None, settings)]
    assert pick == ["first", "peer"]
    assert [c.name for c in harness.choose(bench.contestants, None, ["second"], settings)] == ["first", "peer"]
    with pytest.raises(ValueError, match="unknown contestants \\['third'\\]"):
        harness.choose(bench.contestants, ["third"], None, settings)


def test_bad_contestant_name_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        harness.main(toy([]), ["--only", "nobody", "--json", str(tmp_path / "r.json")])
    assert stop.value.code == 2
    assert "unknown contestants ['nobody']" in capsys.readouterr().err


def test_repetitions_interleave_and_rows_come_in_declared_order(tmp_path, no_thread_settings):
    log = []
    harness.main(toy(log), ["--repeats", "3", "--skip", "peer", "--json", str(tmp_path / "r.json"),
                            "--threads", "2"])
    assert no_thread_settings == [2]
    # case by case; in each repetition every contestant once, before the next repetition starts
    for case, runs in (("a", log[:6]), ("b", log[6:])):
        assert all(c == case for c, _ in runs)
        for r in range(3):
            assert [name for _, name in runs[2 * r:2 * r + 2]] == harness.order(["first", "second"], r, 3)
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert [(row["dataset"], row["contestant"], row["repeat"]) for row in rows] == [
        (d, n, r) for d in "ab" for n in ("first", "second") for r in range(3)]
    assert all(row["order"] == harness.order(["first", "second"], row["repeat"], 3).index(row["contestant"])
               for row in rows)


def test_missing_package_is_a_skipped_row_and_failure_an_error_row(tmp_path, capsys):
    log = []
    bench = toy(log)
    broken = Contestant("broken", lambda data, settings: {}["x"])  # raises KeyError
    bench = Benchmark(**{**bench.__dict__, "contestants": [*bench.contestants, broken]})
    assert harness.main(bench, ["--json", str(tmp_path / "r.json")]) == 0
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    peer = [row for row in rows if row["contestant"] == "peer"]
    assert len(peer) == 2 and all("no-such-distribution-here not installed" in row["skipped"] for row in peer)
    assert all("\n" not in row["skipped"] for row in peer)
    assert ("a", "peer") not in log  # never run
    failed = [row for row in rows if row["contestant"] == "broken"]
    assert failed[0]["error"] == "error: KeyError: 'x'" and "Traceback" in failed[0]["traceback"]
    table = capsys.readouterr().out
    assert "| a | peer | skipped: no-such-distribution-here not installed" in table
    assert "| b | broken | error: KeyError: 'x' |" in table


def test_settings_quick_values_and_the_command_line(tmp_path):
    bench = toy([])
    parser = harness.parser_of(bench)
    assert harness.resolve(bench, parser.parse_args([])).scale == 10
    assert harness.resolve(bench, parser.parse_args(["--quick"])).scale == 2
    quick = harness.resolve(bench, parser.parse_args(["--quick", "--scale", "5", "--datasets", "b"]))
    assert (quick.scale, quick.datasets, quick.constant, quick.quick) == (5, ["b"], 3, True)


def test_result_round_trip_and_render_equal_to_the_fresh_table(tmp_path, capsys):
    path = tmp_path / "toy.json"
    assert harness.main(toy([]), ["--quick", "--json", str(path)]) == 0
    fresh = capsys.readouterr().out
    result = json.loads(path.read_text())
    for key in ("command", "date", "commit", "machine", "versions", "load_average_start", "load_average_end",
                "settings", "rows"):
        assert key in result, key
    assert result["settings"]["scale"] == 2 and result["settings"]["constant"] == 3
    assert result["machine"]["cpus"] >= 1 and "no-such-distribution-here" in result["versions"]
    ok = [row for row in result["rows"] if "value" in row]
    assert {row["value"] for row in ok} == {2.0, 4.0}
    assert all(row["peak_rss_mib"] > 0 and row["run_s"] >= 0 for row in ok)
    assert harness.main(toy([]), ["--render", str(path)]) == 0
    assert capsys.readouterr().out == fresh
    assert fresh.startswith("- command: `python ") and "| dataset | contestant | value | s | peak RSS MiB |" in fresh


def test_prepare_runs_once_per_case_and_its_failure_is_that_contestants(tmp_path):
    prepared = []

    def prepare(data, settings):
        prepared.append(data["case"])
        return {"turns": []}

    def run(state, settings):
        state["turns"].append(1)
        return {"turns": len(state["turns"])}

    def broken(data, settings):
        raise ValueError("cannot build")

    bench = Benchmark(name="toy", description="", case="dataset", cases=lambda s: ["a", "b"],
                      load=lambda case, s: {"case": case},
                      contestants=[Contestant("kept", run, prepare=prepare), Contestant("broken", run, prepare=broken)])
    harness.main(bench, ["--repeats", "2", "--json", str(tmp_path / "r.json")])
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert prepared == ["a", "b"]
    assert [row["turns"] for row in rows if row["contestant"] == "kept"] == [1, 2, 1, 2]
    assert all(row["prepare_s"] >= 0 for row in rows if row["contestant"] == "kept")
    assert [row["error"] for row in rows if row["contestant"] == "broken"] == \
        ["error: RuntimeError: prepare failed: ValueError: cannot build"] * 4


SCRIPT = """
import os, sys
sys.path.insert(0, {benchmarks!r})
from _harness import Benchmark, Contestant, main

def pid(data, settings):
    return {{"pid": os.getpid(), "parent": os.getppid()}}

sys.exit(main(Benchmark(name="own", description="", load=lambda case, s: None, contestants=[
    Contestant("here", pid), Contestant("apart", pid, isolated=True), Contestant("apart too", pid, isolated=True)])))
"""


def test_isolated_contestants_run_in_processes_of_their_own(tmp_path):
    script = tmp_path / "own.py"
    script.write_text(SCRIPT.format(benchmarks=str(BENCHMARKS)))
    done = subprocess.run([sys.executable, str(script), "--json", str(tmp_path / "r.json")], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    here, apart, too = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert apart["parent"] == here["pid"] == too["parent"]
    assert len({here["pid"], apart["pid"], too["pid"]}) == 3
    assert apart["peak_rss_mib"] > 0 and "| apart too |" in done.stdout


def test_json_is_strict_and_header_reads_older_results(tmp_path):
    harness.write_json(tmp_path / "x.json", {"nan": float("nan"), "path": tmp_path, "pair": (1, 2)})
    assert json.loads((tmp_path / "x.json").read_text()) == {"nan": None, "path": str(tmp_path), "pair": [1, 2]}
    old = {"versions": "python 3.11.7, elbo 0.1.0 at 7404a47 (uncommitted changes), torch 2.13.0; Linux-6.1-x86_64, "
                       "2 CPUs; torch threads 1", "load_average_start": [1.0, 2.0, 3.0], "settings": {"threads": 1}}
    text = harness.header(old)
    assert "- commit: 7404a47 (uncommitted changes)" in text
    assert "- machine: Linux-6.1-x86_64; 2 CPUs; 1 thread(s)" in text
    assert "- command: not recorded" in text and "- date: not recorded" in text


def test_peak_rss_is_measured_per_contestant():
    row = harness.measured(lambda: {"x": bytearray(64 * 2**20)[0]})
    assert row["peak_rss_mib"] >= 64 and row["run_s"] >= 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["posteriordb", "spikes", "svi_lda", "topics"])
def test_committed_results_render(name):
    """The documentation builds its pages from these: each script renders its committed JSON."""
    done = subprocess.run([sys.executable, str(BENCHMARKS / f"{name}.py"), "--render",
                           str(BENCHMARKS / "results" / f"{name}.json")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("- command:") and "\n| " in done.stdout
