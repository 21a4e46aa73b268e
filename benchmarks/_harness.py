"""The one harness of the benchmarks (imported by them; not a benchmark itself, so `make bench` skips it).

A benchmark is a declaration: its settings, its data, its contestants and its scoring (a ``Benchmark`` of
``Contestant``s); ``main(benchmark)`` gives every script the same options, runs it, writes one JSON result and
prints the markdown tables rendered from that JSON, by the same function that ``--render`` uses on a saved file::

    BENCHMARK = Benchmark(
        name="example", description="elbo against a peer on a toy problem",
        settings={"steps": Setting(1000, "optimizer steps", quick=10)},
        load=lambda case, s: make_data(s.steps),            # the data of one case (here a single one)
        contestants=[Contestant("elbo", run_ours), Contestant("peer", run_peer, packages=("numpyro",))],
        columns=[Column("fit s", "fit_s", ".2f"), Column("error", "error_of_mean", ".3f")])

    if __name__ == "__main__":
        sys.exit(main(BENCHMARK))

(``run_ours(data, settings) -> dict``: the row's fields; ``settings`` holds every setting by name, with ``quick``,
``threads`` and ``repeats``.)

Every script then takes ``--quick``, ``--threads N`` (default 1: torch's, the BLAS/OpenMP pools' and XLA's, set
before any work), ``--only NAMES`` / ``--skip NAMES``, ``--json PATH`` (default ``benchmarks/results/<name>.json``;
with ``--quick``, ``runs/bench/<name>-quick.json``, so that a smoke run never replaces a committed result),
``--repeats N`` (interleaved repetitions: in every repetition each contestant takes its turn, in an order shuffled by
the repetition's number as the seed, so that a change in the machine's load hits all alike) and ``--render PATH``
(print the tables of a saved result, run nothing), besides its own settings, each an option ``--name-with-dashes``.

A contestant whose packages are not installed is recorded as skipped, with a one-line reason; one that raises is
recorded as an error (its traceback on stderr and in the JSON); neither stops the run. The JSON holds the command
line, the date, the git commit, the machine, the versions of the packages used, the load averages before and after,
the settings, and the rows: one per (case, contestant, repetition), each with the contestant's peak resident memory
(``peak_rss_mib``) and the seconds its run took (``run_s``). Stdout carries the tables alone (whatever a contestant
prints goes to stderr, with the progress), so that a fresh run and ``--render`` print the same.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import json
import math
import os
import platform
import random
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
QUICK_DIR = REPO / "runs" / "bench"
DATA_DIR = (REPO / ".." / "shared" / "data").resolve()
RECORDED = ("torch", "numpy")  # versions in every result, besides python's and elbo's
ROW_MARK = "benchmark-row: "  # the line of a contestant's own process that carries its row
HARNESS_OPTIONS = ("quick", "threads", "only", "skip", "json", "repeats", "render", "worker")


# --- declarations ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One setting of a benchmark, an option ``--name-with-dashes`` of its script: ``default``, its value under
    ``--quick`` (``quick``; None: the default), how to read the command line's text (``type``; default: the type of
    ``default``, a comma-separated list for a list or tuple, a flag for a bool) and the allowed values."""

    default: Any
    help: str = ""
    quick: Any = None
    type: Callable[[str], Any] | None = None
    choices: Sequence | None = None


@dataclass(frozen=True)
class Contestant:
    """One contestant: its ``name`` (the table's), ``run(data, settings) -> dict`` (its measurements, the row's
    fields; ``data`` is the case's, from ``Benchmark.load``), the distributions it needs beyond elbo's own
    (``packages``, as pip names them: a missing one makes the contestant a skipped row), and optionally:

    - ``key``: a short name for ``--only`` / ``--skip`` (the name works too);
    - ``prepare(data, settings) -> state``: run once per case before the repetitions (building a model, compiling,
      warming up); ``run`` then gets the state instead of the data;
    - ``cases``: the cases it runs on (default: all);
    - ``when(settings) -> bool``: whether it runs at all with these settings (default: always);
    - ``isolated``: run in a process of its own (this script, started again), so that its peak resident memory is
      its own and nothing it leaves behind (threads, caches, memory) touches the next contestant.
    """

    name: str
    run: Callable[[Any, SimpleNamespace], dict]
    packages: tuple[str, ...] = ()
    key: str | None = None
    prepare: Callable[[Any, SimpleNamespace], Any] | None = None
    cases: tuple[str, ...] | None = None
    when: Callable[[SimpleNamespace], bool] | None = None
    isolated: bool = False

    @property
    def id(self) -> str:
        return self.key or self.name


@dataclass(frozen=True)
class Column:
    """A column of the default table: its ``header``, the row's field (or a function of the row) and its format."""

    header: str
    value: str | Callable[[dict], Any]
    spec: str = ""

    def of(self, row: dict) -> str:
        return cell(self.value(row) if callable(self.value) else row.get(self.value), self.spec)


@dataclass(frozen=True)
class Benchmark:
    """A benchmark: ``name`` (its JSON is ``benchmarks/results/<name>.json``), a one-line ``description``, its
    ``contestants`` and ``settings`` (name -> ``Setting``, an option; or a plain value, a constant recorded in the
    JSON), and:

    - ``cases(settings) -> names`` (default: one case) and ``load(case, settings) -> data`` (case None for one);
      ``case`` is the rows' field that names the case ("posterior", "dataset", ...); a case that fails to load is
      an error row for every contestant;
    - ``score(data, found, settings) -> dict``: the row's fields from what a contestant returned, by the same code
      for every row (default: what it returned);
    - ``summarize(rows, settings) -> dict``: more fields of the result (a summary, targets, notes);
    - the tables: ``columns`` (the default table: case, contestant, then these) or ``table(result) -> markdown``,
      and ``rows(result)``, the rows of a saved result where an older layout keeps them elsewhere;
    - ``setup(settings, contestants)`` before the first case (after the threads are set), ``finish(result,
      settings)`` after the JSON is written (a figure);
    - ``packages``: more distributions whose versions the result records; ``repeats``: the default of
      ``--repeats``.
    """

    name: str
    description: str
    contestants: Sequence[Contestant]
    settings: dict[str, Any] = field(default_factory=dict)
    cases: Callable[[SimpleNamespace], Sequence[str]] | None = None
    load: Callable[[str | None, SimpleNamespace], Any] | None = None
    case: str = "case"
    score: Callable[[Any, dict, SimpleNamespace], dict] | None = None
    summarize: Callable[[list, SimpleNamespace], dict] | None = None
    columns: Sequence[Column] = ()
    table: Callable[[dict], str] | None = None
    rows: Callable[[dict], list] | None = None
    setup: Callable[[SimpleNamespace, list], None] | None = None
    finish: Callable[[dict, SimpleNamespace], None] | None = None
    packages: tuple[str, ...] = ()
    repeats: int = 1
    epilog: str = ""


# --- the command line -----------------------------------------------------------------------------------------------


def option(name: str) -> str:
    return "--" + name.replace("_", "-")


def comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _add_setting(parser, name: str, setting: Setting) -> None:
    default = setting.default
    quick = "" if setting.quick is None else f"; --quick: {setting.quick}"
    text = f"{setting.help} (default: {default}{quick})".lstrip()
    if isinstance(default, bool) and setting.type is None:
        parser.add_argument(option(name), action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                            help=text)
        return
    if setting.type is not None:
        kind = setting.type
    elif isinstance(default, (list, tuple)):
        kind = comma_list
    elif isinstance(default, Path):
        kind = Path
    else:
        kind = type(default) if default is not None else str
    parser.add_argument(option(name), type=kind, choices=setting.choices, default=argparse.SUPPRESS, help=text)


def parser_of(benchmark: Benchmark) -> argparse.ArgumentParser:
    keys = ", ".join(c.id if c.id == c.name else f"{c.id} ({c.name})" for c in benchmark.contestants)
    parser = argparse.ArgumentParser(
        prog=f"benchmarks/{benchmark.name}.py", description=benchmark.description, epilog=benchmark.epilog or None,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    common = parser.add_argument_group("every benchmark's options")
    common.add_argument("--quick", action="store_true", help="a smoke run: the settings' quick values")
    common.add_argument("--threads", type=int, default=1,
                        help="threads of torch, of the BLAS/OpenMP pools and of XLA, set before any work (default 1)")
    common.add_argument("--only", type=comma_list, default=None, help=f"comma-separated contestants to run: {keys}")
    common.add_argument("--skip", type=comma_list, default=None, help="comma-separated contestants to leave out")
    common.add_argument("--json", type=Path, default=None,
                        help=f"where the result goes (default benchmarks/results/{benchmark.name}.json; --quick: "
                             f"runs/bench/{benchmark.name}-quick.json)")
    common.add_argument("--repeats", type=int, default=benchmark.repeats,
                        help=f"interleaved repetitions, each in its own shuffled order of the contestants (default "
                             f"{benchmark.repeats}; 1: one run, in the declared order)")
    common.add_argument("--render", type=Path, default=None, metavar="PATH.json",
                        help="print the tables of a saved result and exit; runs nothing")
    common.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # an isolated contestant's own process
    own = parser.add_argument_group(f"{benchmark.name}'s settings")
    for name, setting in benchmark.settings.items():
        if name in HARNESS_OPTIONS:
            raise ValueError(f"setting {name!r} of {benchmark.name} is one of the harness's options")
        if isinstance(setting, Setting):
            _add_setting(own, name, setting)
    return parser


def resolve(benchmark: Benchmark, args) -> SimpleNamespace:
    """The settings' values: given on the command line, else the quick value under ``--quick``, else the default;
    with ``quick``, ``threads`` and ``repeats``."""
    values = {}
    for name, setting in benchmark.settings.items():
        if not isinstance(setting, Setting):
            values[name] = setting
        elif hasattr(args, name):
            values[name] = getattr(args, name)
        else:
            values[name] = setting.quick if args.quick and setting.quick is not None else setting.default
    return SimpleNamespace(**values, quick=args.quick, threads=args.threads, repeats=args.repeats)


def choose(contestants: Sequence[Contestant], only, skip, settings) -> list[Contestant]:
    """The contestants that run: those named by ``only`` (all if None), less those named by ``skip``, each by key or
    name (case-insensitive), and whose ``when`` holds. Raises ValueError on a name no contestant has."""
    names = {n.lower() for c in contestants for n in (c.id, c.name)}
    unknown = [n for n in (only or []) + (skip or []) if n.lower() not in names]
    if unknown:
        raise ValueError(f"unknown contestants {unknown}; known: {', '.join(c.id for c in contestants)}")

    def named(c, chosen):
        return bool({c.id.lower(), c.name.lower()} & {n.lower() for n in chosen})

    return [c for c in contestants if (only is None or named(c, only)) and not (skip and named(c, skip))
            and (c.when is None or c.when(settings))]


def set_threads(threads: int) -> None:
    """``threads`` for torch, the BLAS/OpenMP pools (through the environment, for what is imported or started later,
    and threadpoolctl, for the libraries already loaded) and XLA (effective only before JAX is first imported)."""
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[variable] = str(threads)
    eigen = "false" if threads == 1 else "true"
    os.environ["XLA_FLAGS"] = f"--xla_cpu_multi_thread_eigen={eigen} intra_op_parallelism_threads={threads}"
    if "torch" in sys.modules:  # else torch takes OMP_NUM_THREADS when it is first imported
        sys.modules["torch"].set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(threads)


# --- measuring --------------------------------------------------------------------------------------------------


def reset_peak_rss() -> bool:
    """Start this process's peak resident memory (VmHWM) afresh at its current size (Linux: ``clear_refs`` 5);
    False where that is not possible (the peak then counts from the process's start)."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def peak_rss_mib(children_before: float | None = None) -> float:
    """This process's peak resident memory since the last ``reset_peak_rss``, in MiB (VmHWM; ``getrusage`` where
    there is no /proc), or its largest child's where a child has passed ``children_before`` (the children's peak,
    ``children_rss_mib()``, before the measured work: only a child started by it can have raised it)."""
    try:
        with open("/proc/self/status") as status:
            own = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024  # kB
    except (OSError, StopIteration):
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux
    children = children_rss_mib()
    return max(own, children) if children_before is not None and children > children_before else own


def children_rss_mib() -> float:
    """The largest peak resident memory of this process's finished children, in MiB."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def measured(function, *arguments) -> dict:
    """``function(*arguments)``'s row with the seconds it took (``run_s``) and its peak resident memory
    (``peak_rss_mib``: while it ran, with what the process held before, or its largest child's)."""
    reset_peak_rss()
    children = children_rss_mib()
    start = time.perf_counter()
    row = dict(function(*arguments))
    row.setdefault("run_s", time.perf_counter() - start)
    row.setdefault("peak_rss_mib", peak_rss_mib(children))
    return row


def record_failure(row: dict, error: BaseException, heading: str = "") -> str:
    """A contestant's failure written into its ``row``: ``"error"`` (one line, ``error: Type: first line``) and
    ``"traceback"``, which is also printed to stderr after ``heading``; returns the error line."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    row["error"] = f"error: {type(error).__name__}: {message}"
    row["traceback"] = traceback.format_exc()
    print(f"{heading}{row['traceback']}", file=sys.stderr, flush=True)
    return row["error"]


def missing(contestant: Contestant) -> str | None:
    """Why ``contestant`` cannot run here (a package is not installed), or None."""
    absent = [p for p in contestant.packages if version(p) is None]
    if not absent:
        return None
    names = " ".join(absent)
    return f"skipped: {', '.join(absent)} not installed (pip install {names}; in the bench extra)"


def version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def commit() -> str:
    """The checked-out commit, marked when the working tree has uncommitted changes; "unknown" outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (uncommitted changes)" if dirty.strip() else "")


def machine() -> dict:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "")
    except OSError:
        pass
    return {"platform": platform.platform(), "cpu": cpu or platform.processor(), "cpus": os.cpu_count(),
            "python": platform.python_version()}


def versions(packages: Sequence[str]) -> dict:
    names = ["elbo", *RECORDED, *packages]
    return {"python": platform.python_version(), **{name: version(name) for name in dict.fromkeys(names)}}


# --- running --------------------------------------------------------------------------------------------------


def order(contestants: Sequence, repeat: int, repeats: int) -> list:
    """The contestants' order in repetition ``repeat``: the declared one for a single run; else shuffled, seeded by
    the repetition's number (the same orders on every machine)."""
    chosen = list(contestants)
    if repeats > 1:
        random.Random(repeat).shuffle(chosen)
    return chosen


def _in_own_process(case, contestant: Contestant) -> dict:
    """``contestant``'s row from a process of its own: this script again, with the same command line."""
    job = json.dumps({"case": case, "contestant": contestant.id})
    argv = [a for a in sys.argv[1:] if not a.startswith("--worker")]
    with tempfile.TemporaryFile("w+") as out:
        done = subprocess.run([sys.executable, sys.argv[0], *argv, "--worker", job], stdout=out, text=True)
        out.seek(0)
        lines = [line[len(ROW_MARK):] for line in out.read().splitlines() if line.startswith(ROW_MARK)]
    if not lines:
        raise RuntimeError(f"its process exited with {done.returncode} and no row (its stderr is above)")
    return json.loads(lines[-1])


def run_case(benchmark: Benchmark, case, contestants: list, settings, worker: bool = False) -> list[dict]:
    """The rows of one case: every contestant in every repetition (interleaved), the rows in declared order."""
    head = {} if case is None else {benchmark.case: case}
    label = "" if case is None else f"{case} / "
    present = [c for c in contestants if c.cases is None or case in c.cases]
    rows = {(c.id, 0): {**head, "contestant": c.name, "key": c.id, "skipped": missing(c)}
            for c in present if missing(c)}
    ready = [c for c in present if (c.id, 0) not in rows]
    local = [c for c in ready if worker or not c.isolated]
    try:
        data = benchmark.load(case, settings) if local and benchmark.load is not None else None
    except Exception as error:  # a case that does not load is reported, not fatal
        message = record_failure({}, error, f"{label}loading failed:\n")
        return [{**head, "contestant": c.name, "key": c.id, "error": message} for c in present]
    states = {c.id: _prepared(c, data, settings, f"{label}{c.name}") for c in local}
    for repeat in range(settings.repeats):
        for place, c in enumerate(order(ready, repeat, settings.repeats)):
            row = {**head, "contestant": c.name, "key": c.id} | (
                {"repeat": repeat, "order": place} if settings.repeats > 1 else {})
            try:
                if c.isolated and not worker:
                    row |= _in_own_process(case, c)
                else:
                    row |= _measured_row(benchmark, c, data, states[c.id], settings)
                status = status_line(benchmark, row)
            except Exception as error:  # one contestant's failure must not stop the run
                status = record_failure(row, error, f"{label}{c.name} failed:\n")
            rows[c.id, repeat] = row
            if not worker:  # its parent prints it
                print(f"{label}{c.name}{f' (repetition {repeat + 1})' if settings.repeats > 1 else ''}: "
                      f"{status}", file=sys.stderr, flush=True)
    return [rows[key] for key in sorted(rows, key=lambda k: ([c.id for c in present].index(k[0]), k[1]))]


def _prepared(contestant: Contestant, data, settings, label: str):
    """``contestant``'s state for this case (``prepare``'s, and the seconds it took), or the error it raised."""
    if contestant.prepare is None:
        return None
    try:
        start = time.perf_counter()
        state = contestant.prepare(data, settings)
        return SimpleNamespace(state=state, seconds=time.perf_counter() - start)
    except Exception as error:  # the contestant's rows are errors; the others run
        return record_failure({}, error, f"{label}: prepare failed:\n")


def _measured_row(benchmark: Benchmark, contestant: Contestant, data, prepared, settings) -> dict:
    if isinstance(prepared, str):
        raise RuntimeError(f"prepare failed: {prepared.removeprefix('error: ')}")
    found = measured(contestant.run, prepared.state if prepared else data, settings)
    kept = {key: found.pop(key) for key in ("run_s", "peak_rss_mib")}
    if prepared:
        kept["prepare_s"] = prepared.seconds
    return (benchmark.score(data, found, settings) if benchmark.score else found) | kept


def status_line(benchmark: Benchmark, row: dict) -> str:
    if row.get("error"):
        return row["error"]
    cells = [f"{column.header} {column.of(row)}" for column in benchmark.columns]
    return ", ".join(cells + [f"{row['run_s']:.1f} s", f"peak RSS {row['peak_rss_mib']:.0f} MiB"])


def run(benchmark: Benchmark, contestants: list, settings) -> list[dict]:
    cases = list(benchmark.cases(settings)) if benchmark.cases else [None]
    return [row for case in cases for row in run_case(benchmark, case, contestants, settings)]


def _worker(benchmark: Benchmark, job: str, contestants: list, settings) -> dict:
    """An isolated contestant's row, in its own process."""
    job = json.loads(job)
    chosen = [c for c in contestants if c.id == job["contestant"]]
    rows = run_case(benchmark, job["case"], chosen, settings, worker=True)
    return {k: v for k, v in rows[0].items() if k not in ("contestant", "key", benchmark.case)}


def main(benchmark: Benchmark, argv=None) -> int:
    """The script's entry point: parse the options, run (or ``--render``), write the JSON, print its tables."""
    parser = parser_of(benchmark)
    args = parser.parse_args(argv)
    if args.render is not None:
        try:
            result = json.loads(args.render.read_text())
        except (OSError, ValueError) as error:
            parser.error(f"--render {args.render}: {error}")
        print(render(benchmark, result))
        return 0
    settings = resolve(benchmark, args)
    try:
        contestants = choose(benchmark.contestants, args.only, args.skip, settings)
        if benchmark.cases and not args.worker:
            benchmark.cases(settings)  # checks the settings that name the cases
    except ValueError as error:
        parser.error(str(error))
    set_threads(args.threads)
    load_start, start, date = os.getloadavg(), time.perf_counter(), now()
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries the tables (or a worker's row) alone
        if benchmark.setup is not None:
            benchmark.setup(settings, contestants)
        if args.worker:  # the parent repeats it
            row = _worker(benchmark, args.worker, contestants, SimpleNamespace(**{**vars(settings), "repeats": 1}))
    if args.worker:
        print(ROW_MARK + dumps(row), flush=True)
        return 0
    path = args.json or (QUICK_DIR / f"{benchmark.name}-quick.json" if args.quick else
                         RESULTS / f"{benchmark.name}.json")
    print(f"{benchmark.name}: {', '.join(c.name for c in contestants)}; {args.threads} thread(s)"
          f"{'; QUICK smoke run' if args.quick else ''}", file=sys.stderr, flush=True)
    with contextlib.redirect_stdout(sys.stderr):
        rows = run(benchmark, contestants, settings)
    result = {"benchmark": benchmark.name, "command": command_line(), "date": date, "commit": commit(),
              "machine": machine(), "threads": args.threads,
              "versions": versions([*benchmark.packages, *(p for c in contestants for p in c.packages)]),
              "load_average_start": load_start, "load_average_end": os.getloadavg(),
              "total_seconds": time.perf_counter() - start,
              "settings": {**vars(settings), "contestants": [c.name for c in contestants]}, "rows": rows}
    if benchmark.summarize is not None:
        result |= benchmark.summarize(rows, settings)
    write_json(path, result)
    print(render(benchmark, json.loads(path.read_text())))
    if benchmark.finish is not None:
        benchmark.finish(result, settings)
    print(f"result: {path}", file=sys.stderr)
    return 0


def command_line() -> str:
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(REPO) if script.is_relative_to(REPO) else script
    return shlex.join(["python", str(shown), *sys.argv[1:]])


def now() -> str:
    """The date and time, UTC, to the second (a result's is its start's)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


# --- the JSON -------------------------------------------------------------------------------------------------


def _plain(value):
    """JSON's form of a value: not-finite floats as null (JSON has no NaN), tuples as lists, numpy and torch
    numbers and arrays as Python's, paths as text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy and torch
        return _plain(value.tolist())
    return value


def dumps(value, indent=None) -> str:
    return json.dumps(_plain(value), indent=indent, allow_nan=False)


def write_json(path: Path, value) -> None:
    """``value`` as indented strict JSON at ``path``, written atomically (a temporary file, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(dumps(value, indent=2) + "\n")
    os.replace(temporary, path)


# --- rendering --------------------------------------------------------------------------------------------------


def cell(x, spec: str = "") -> str:
    """A table cell: ``x`` formatted by ``spec``; "-" for a missing value, "nan" for NaN."""
    if x is None:
        return "-"
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    if isinstance(x, bool):
        return "yes" if x else "no"
    return format(x, spec)


def markdown(headers: Sequence[str], lines: Sequence[Sequence[str]], right: Sequence[bool] | None = None) -> str:
    """A markdown table; ``right``: which columns align right (numbers)."""
    right = right or [False] * len(headers)
    rule = "|" + "|".join("---:" if r else "---" for r in right) + "|"
    return "\n".join(["| " + " | ".join(headers) + " |", rule, *("| " + " | ".join(line) + " |" for line in lines)])


def rows_of(benchmark: Benchmark, result: dict) -> list[dict]:
    return benchmark.rows(result) if benchmark.rows else result["rows"]


def default_table(benchmark: Benchmark, result: dict) -> str:
    rows = rows_of(benchmark, result)
    first = [benchmark.case] if any(benchmark.case in row for row in rows) else []
    repeated = any("repeat" in row for row in rows)
    headers = first + ["contestant"] + (["repetition"] if repeated else []) + \
        [c.header for c in benchmark.columns] + ["peak RSS MiB"]
    lines = []
    for row in rows:
        head = [str(row.get(benchmark.case, "")) for _ in first] + [row["contestant"]] + \
            ([cell(row.get("repeat"))] if repeated else [])
        if row.get("error") or row.get("skipped"):
            lines.append(head + [row.get("error") or row["skipped"]] + ["-"] * len(benchmark.columns))
        else:
            lines.append(head + [c.of(row) for c in benchmark.columns] + [cell(row.get("peak_rss_mib"), ".0f")])
    return markdown(headers, lines, [False] * (len(first) + 1 + repeated) + [True] * (len(benchmark.columns) + 1))


def _recorded_commit(result: dict) -> str:
    """The commit of a result; older results kept it inside their versions ("elbo 0.1.0 at abc1234 ...")."""
    if result.get("commit"):
        return result["commit"]
    found = re.search(r"elbo (?:\S+ )?at ([0-9a-f]{7,40}(?: \(uncommitted changes\))?)", _versions_text(result))
    return found.group(1) if found else "not recorded"


def _versions_text(result: dict) -> str:
    found = result.get("versions") or ""
    if isinstance(found, dict):
        return ", ".join(f"{name} {value}" for name, value in found.items()
                         if value is not None and name not in ("platform", "cpus"))  # older results' machine
    return found


def _recorded_machine(result: dict) -> str:
    """The machine of a result; older results kept the platform and CPU count among their versions."""
    found = result.get("machine")
    if found:
        return f"{found['platform']}; {found.get('cpu') or 'CPU not recorded'}; {found['cpus']} CPUs"
    old = result.get("versions") if isinstance(result.get("versions"), dict) else {}
    if old.get("platform"):
        return f"{old['platform']}; {old.get('cpus')} CPUs"
    text = re.search(r"; (\S+), (\d+) CPUs", _versions_text(result))
    return f"{text.group(1)}; {text.group(2)} CPUs" if text else "not recorded"


def _load(values) -> str:
    return ", ".join(f"{x:.2f}" for x in values) if values else "not recorded"


def header(result: dict) -> str:
    """The block above the tables: command, machine, threads, load, commit, date, versions."""
    minutes = f"; {result['total_seconds'] / 60:.1f} min in all" if result.get("total_seconds") else ""
    threads = result.get("threads") or result.get("settings", {}).get("threads")
    lines = [f"- command: `{result['command']}`" if result.get("command") else "- command: not recorded",
             f"- machine: {_recorded_machine(result)}" + (f"; {threads} thread(s)" if threads else ""),
             f"- load average (1, 5, 15 min): {_load(result.get('load_average_start'))} at the start, "
             f"{_load(result.get('load_average_end'))} at the end",
             f"- commit: {_recorded_commit(result)}",
             f"- date: {result.get('date') or 'not recorded'}{minutes}",
             f"- versions: {_versions_text(result) or 'not recorded'}"]
    for i, run in enumerate(result.get("invocations", []), 1):  # a result merged from several runs
        lines.append(f"- run {i} of {len(result['invocations'])}: {', '.join(run['contestants'])}; load average "
                     f"{_load(run.get('load_average_start'))} at the start, {_load(run.get('load_average_end'))} at "
                     f"the end; {run['total_seconds'] / 60:.1f} min")
    return "\n".join(lines)


def render(benchmark: Benchmark, result: dict) -> str:
    """The markdown of a result: the header block, then the benchmark's tables. The same for a fresh run (read back
    from its JSON) and for ``--render``."""
    tables = benchmark.table(result) if benchmark.table else default_table(benchmark, result)
    return f"{header(result)}\n\n{tables.strip()}"


# --- data helpers that more than one benchmark uses --------------------------------------------------------------


def shuffled_training(data, seed: int = 0):
    """``data`` (a dataclass with ``train`` and, optionally, ``train_labels`` and ``train_tokens``) with its
    training documents in one fixed random order. The peers' online passes take their minibatches in the order
    given (ours reshuffles every epoch), and 20news's file is not in a random order: scikit-learn's online LDA
    fitted in file order had twice the held-out perplexity it has on the shuffled documents."""
    import dataclasses

    import torch

    order_ = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(seed))
    changes = {"train": data.train[order_]}
    if getattr(data, "train_labels", None) is not None:
        changes["train_labels"] = data.train_labels[order_]
    if getattr(data, "train_tokens", None) is not None:
        changes["train_tokens"] = tuple(data.train_tokens[i] for i in order_.tolist())
    return dataclasses.replace(data, **changes)


def bag_of_words(x, dtype=int) -> list[list[tuple[int, Any]]]:
    """Dense counts ``(D, V)`` as gensim's corpus: one ``[(word id, count), ...]`` per document."""
    import numpy as np

    counts = np.asarray(x.numpy() if hasattr(x, "numpy") else x)
    return [[(int(j), dtype(row[j])) for j in np.flatnonzero(row)] for row in counts]
