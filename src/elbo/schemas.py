"""The schemas of a run's measurement files, checked whenever one is read back: ``evaluation.json``
(``elbo.evaluate.evaluate_run``), ``surgery.json`` (``elbo.surgery.surgery_run``) and ``diagnostics.json``
(``elbo.diagnostics.diagnose_run``).

A file is valid JSON of the wrong shape when it was edited by hand, truncated into another value, or written by
something else: ``check(kind, value, path)`` finds the first key that is missing or of the wrong type, nested ones
included, and says so in one line (an ``InputError``) before a reader trips over it. A schema holds the keys its
writer writes, with their types; a file may hold more keys than these. An undefined number (written ``null``, since
JSON has no NaN; an older file's ``NaN`` literal is read the same) is allowed only where the writer makes one: a
standard error over a single point, a gradient signal-to-noise ratio with no noise to measure, a kind's own
metric. Plain Python, no torch: any reader can use it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ._checks import one_of
from .errors import InputError

__all__ = ["check", "remedy", "SCHEMAS", "FILES", "COMMANDS", "SURGERY_TERMS"]

FILES = {"evaluation": "evaluation.json", "surgery": "surgery.json", "diagnostics": "diagnostics.json"}
COMMANDS = {"evaluation": "evaluate", "surgery": "surgery", "diagnostics": "diagnose"}  # the command writing each
# the terms elbo.surgery.elbo_surgery measures (its SURGERY_TERMS, which imports torch; a test holds the two equal)
SURGERY_TERMS = ("reconstruction", "index_code_mi", "marginal_kl", "total_correlation", "dimensionwise_kl", "kl",
                 "elbo")


class _Problem(Exception):
    """The first thing wrong in a file, as the message of ``check`` words it."""


def _shown(value) -> str:
    """``value`` as the message shows it: a scalar as JSON (at most 40 characters), a container by its type."""
    if isinstance(value, (dict, list)):
        return _type_name(value)
    text = json.dumps(value)  # escapes a newline: the message stays one line
    return text if len(text) <= 40 else text[:37] + "..."


def _type_name(value) -> str:
    for kind, name in ((dict, "a JSON object"), (list, "a list"), (str, "a string"), (bool, "true or false"),
                       ((int, float), "a number")):
        if isinstance(value, kind):
            return name
    return "null"


class _Node:
    """One value of a schema: ``what`` it must be, a shallow test (``accepts``), and the values inside it."""

    what = ""

    def accepts(self, value) -> bool:
        raise NotImplementedError

    def children(self, value, name: str):
        return ()


class _Scalar(_Node):
    def __init__(self, what: str, test):
        self.what, self.accepts = what, test


def _is_integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


INTEGER = _Scalar("an integer", _is_integer)
NUMBER = _Scalar("a number (not NaN)", lambda value: _is_number(value) and not math.isnan(value))
NUMBER_OR_NAN = _Scalar("a number or null", lambda value: value is None or _is_number(value))  # null: undefined
TEXT = _Scalar("a string", lambda value: isinstance(value, str))
ANYTHING = _Scalar("a JSON value", lambda value: True)  # a kind's own results beside its numbers


class _Nullable(_Node):
    def __init__(self, node: _Node):
        self.node, self.what = node, f"{node.what} or null"

    def accepts(self, value) -> bool:
        return value is None or self.node.accepts(value)

    def children(self, value, name: str):
        return () if value is None else self.node.children(value, name)


class _List(_Node):
    def __init__(self, item: _Node):
        self.item, self.what = item, "a list"

    def accepts(self, value) -> bool:
        return isinstance(value, list)

    def children(self, value, name: str):
        return ((self.item, item, f"{name}[{i}]") for i, item in enumerate(value))


class _Map(_Node):
    """A JSON object of any keys that ``key_test`` accepts (``key_what``), each value a ``value``."""

    def __init__(self, value: _Node, key_what: str, key_test):
        self.value, self.key_what, self.key_test, self.what = value, key_what, key_test, "a JSON object"

    def accepts(self, value) -> bool:
        return isinstance(value, dict)

    def children(self, value, name: str):
        for key, item in value.items():
            if not self.key_test(key):
                raise _Problem(f'the keys of "{name}" must be {self.key_what}, got {_shown(key)}')
            yield self.value, item, f"{name}.{key}"


class _Record(_Node):
    """A JSON object with the ``required`` keys, and the ``optional`` ones where present; ``rule(value)`` returns
    what is wrong across its keys, or ``None``."""

    def __init__(self, required: dict, optional: dict | None = None, rule=None):
        self.required, self.optional, self.rule, self.what = required, optional or {}, rule, "a JSON object"

    def accepts(self, value) -> bool:
        return isinstance(value, dict)

    def children(self, value, name: str):
        prefix = f"{name}." if name else ""
        for key, node in self.required.items():
            if key not in value:
                raise _Problem(f'missing "{prefix}{key}"')
            yield node, value[key], prefix + key
        for key, node in self.optional.items():
            if key in value:
                yield node, value[key], prefix + key
        problem = self.rule and self.rule(value)
        if problem:
            raise _Problem(problem)


def _walk(node: _Node, value, name: str) -> None:
    if not node.accepts(value):
        raise _Problem(f'"{name}" must be {node.what}, got {_shown(value)}')
    for child, item, child_name in node.children(value, name):
        _walk(child, item, child_name)


def _units_per_layer(value: dict) -> str | None:
    """``active_units`` and ``latent_dims``: both null (q's latent is not a vector), or one entry per layer each."""
    units, dims = value["active_units"], value["latent_dims"]
    if (units is None) != (dims is None) or (units is not None and len(units) != len(dims)):
        return (f'"active_units" and "latent_dims" must both be null or hold one entry per layer each, got '
                f"{_entries(units)} and {_entries(dims)}")
    return None


def _entries(value) -> str:
    return "null" if value is None else f"{len(value)} entries"


def _is_sample_size(key: str) -> bool:
    return key.isascii() and key.isdigit() and int(key) > 0


ESTIMATE = _Record({"mean": NUMBER, "stderr": NUMBER_OR_NAN})  # stderr is NaN over a single point
INTEGERS = _Nullable(_List(INTEGER))
AIS_RUN = {"num_steps": INTEGER, "num_chains": INTEGER, "start": TEXT, "seconds": NUMBER}  # how AIS or BDMC ran
AIS = _Record({**ESTIMATE.required, "mc_stderr": NUMBER_OR_NAN, "ess": NUMBER, **AIS_RUN,  # mc_stderr: one chain
               "minus_elbo": ESTIMATE, "minus_log_likelihood": ESTIMATE})
BDMC = _Record({"num_points": INTEGER, "num_samples": INTEGER, **AIS_RUN,
                **{name: ESTIMATE for name in ("elbo", "iwae", "lower", "upper", "gap", "kl_lower", "kl_upper")}})

SCHEMAS = {
    "evaluation": _Record(
        {"run": TEXT, "epoch": INTEGER, "data": TEXT, "unit": TEXT, "seed": INTEGER, "processes": INTEGER,
         "num_points": INTEGER,
         "log_likelihood": _Record({"mean": NUMBER, "stderr": NUMBER_OR_NAN, "num_samples": INTEGER}),
         "elbo": ESTIMATE,
         "iwae": _Map(ESTIMATE, "numbers of samples such as \"5\"", _is_sample_size),
         "active_units": INTEGERS, "latent_dims": INTEGERS, "seconds": NUMBER},
        {"metrics": _Map(NUMBER_OR_NAN, "strings", lambda key: True),
         "details": _Map(ANYTHING, "strings", lambda key: True), "ais": AIS, "bdmc": BDMC},
        rule=_units_per_layer),
    "surgery": _Record(
        {"run": TEXT, "epoch": INTEGER, "data": TEXT, "split": TEXT, "seed": INTEGER, "num_points": INTEGER,
         "num_samples": INTEGER, "dimension_samples": INTEGER, "latent_dim": INTEGER, "log_num_points": NUMBER,
         "standard_errors": TEXT, **{term: ESTIMATE for term in SURGERY_TERMS},
         "dimensionwise_kl_per_unit": _List(NUMBER), "seconds": NUMBER}),
    "diagnostics": _Record(
        {"run": TEXT, "epoch": INTEGER, "data": TEXT, "seed": INTEGER, "num_test_points": INTEGER,
         "latent_dim": INTEGER, "activity": _List(NUMBER), "active_units": INTEGER,
         "kl_per_dimension": _Nullable(_List(NUMBER)), "collapse_warning": _Nullable(TEXT),
         "snr_batch_size": INTEGER, "num_draws": INTEGER,
         "gradient_snr": _List(_Record({"estimator": TEXT, "k": INTEGER, "encoder": NUMBER_OR_NAN,
                                        "decoder": NUMBER_OR_NAN})),  # NaN: a group with no noise to measure
         "seconds": NUMBER}),
}


def remedy(kind: str, path) -> str:
    """How to write the ``kind`` file at ``path`` anew: "`elbo evaluate RUN` writes it anew"."""
    return f"`elbo {COMMANDS[kind]} {Path(path).parent}` writes it anew"


def check(kind: str, value, path) -> dict:
    """``value`` (the content of the ``kind`` measurement file at ``path``, as ``json.load`` read it) if it has the
    keys and types its writer gives it; else ``InputError``, one line naming the file and the first problem:
    ``RUN/evaluation.json: not the output of `elbo evaluate` ("epoch" must be an integer, got "2"); ...``.
    ``kind``: ``"evaluation"``, ``"surgery"`` or ``"diagnostics"``."""
    one_of("kind", kind, tuple(SCHEMAS))
    try:
        if not isinstance(value, dict):
            raise _Problem(f"{_type_name(value)}, not a JSON object")
        _walk(SCHEMAS[kind], value, "")
    except _Problem as problem:
        raise InputError(f"{path}: not the output of `elbo {COMMANDS[kind]}` ({problem}); {remedy(kind, path)}") \
            from None
    return value
