"""MkDocs hook: one page per benchmark, rendered at build time from its JSON.

For each ``benchmarks/results/NAME.json`` it runs ``python benchmarks/NAME.py --render benchmarks/results/NAME.json``
(the benchmark harness prints markdown: a header with the command, machine, load, commit and date, then the
tables) and adds the output as the page ``results/NAME.md``, listed under "Results" in the navigation. A render
that fails, or prints nothing, stops the build with its error: a results page is never skipped silently, and no
measured number is typed by hand into the site.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
SECTION = "Results"
TIMEOUT_S = 300
FIGURES = {"figures/mnist_curves.png": "results/mnist/curves.png"}  # committed outside docs/: site path -> file


def benchmarks() -> list[str]:
    """The benchmarks that have a committed result, by name (``benchmarks/results/NAME.json``)."""
    return sorted(path.stem for path in RESULTS.glob("*.json"))


def render(name: str) -> str:
    """The markdown that ``benchmarks/NAME.py --render`` prints for its JSON; raises ``PluginError`` on failure."""
    script, result = ROOT / "benchmarks" / f"{name}.py", RESULTS / f"{name}.json"
    command = [sys.executable, str(script.relative_to(ROOT)), "--render", str(result.relative_to(ROOT))]
    if not script.is_file():
        raise PluginError(f"results page {name}: {result.relative_to(ROOT)} has no script {script.relative_to(ROOT)}")
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as error:
        raise PluginError(f"results page {name}: `{' '.join(command)}` took over {TIMEOUT_S} s") from error
    if done.returncode != 0 or not done.stdout.strip():
        raise PluginError(f"results page {name}: `{' '.join(command)}` exited {done.returncode}"
                          f"{'' if done.stdout.strip() else ' and printed nothing'}:\n{done.stderr.strip()}")
    return page(name, command, done.stdout)


def page(name: str, command: list[str], markdown: str) -> str:
    source = f"`benchmarks/results/{name}.json`"
    shown = " ".join(["python", *command[1:]])
    note = (f"!!! note \"Rendered from data\"\n    Every number on this page is read from {source} at build time by "
            f"`{shown}`; none is typed by hand. The explanation pages link here for the numbers they discuss.\n\n")
    if markdown.lstrip().startswith("# "):
        title, _, rest = markdown.lstrip().partition("\n")
        return f"{title}\n\n{note}{rest}"
    return f"# Benchmark: {name}\n\n{note}{markdown}"


def index(names: list[str]) -> str:
    rows = "\n".join(f"| [{name}]({name}.md) | `benchmarks/{name}.py` | `benchmarks/results/{name}.json` |"
                     for name in names)
    return ("# Results\n\n"
            "One page per benchmark, each rendered at build time from the JSON the benchmark wrote, with the command,\n"
            "the machine, the load and the commit that produced it. To add one: commit `benchmarks/results/NAME.json`\n"
            "written by `benchmarks/NAME.py`; its page appears here on the next `make docs`.\n\n"
            "| page | script | data |\n|---|---|---|\n" + rows + "\n\n"
            "Measurements made before the benchmark harness, that have no JSON, are kept with where they came from in\n"
            "[Performance notes](../explanation/performance.md).\n")


def on_config(config):
    """List every results page under the navigation's "Results" section."""
    for entry in config.nav or []:
        if isinstance(entry, dict) and SECTION in entry:
            entry[SECTION] = ["results/index.md", *({name: f"results/{name}.md"} for name in benchmarks())]
            return config
    raise PluginError(f"mkdocs.yml's nav has no {SECTION!r} section for the benchmark pages")


def on_files(files, config):
    names = benchmarks()
    files.append(File.generated(config, "results/index.md", content=index(names)))
    for name in names:
        files.append(File.generated(config, f"results/{name}.md", content=render(name)))
    for path, source in FIGURES.items():
        if not (ROOT / source).is_file():
            raise PluginError(f"figure {source} is missing")
        files.append(File.generated(config, path, abs_src_path=str(ROOT / source)))
    return files
