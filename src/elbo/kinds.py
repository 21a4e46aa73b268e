"""What a model kind and a data set are, as the registries hold them (``elbo.registry.KINDS``, ``DATASETS``).

A kind (``Kind``) is everything the generic layers (training, checkpoints, evaluation by importance sampling, the
report) need to know about one family of amortized models and their data, and nothing else knows it:

- ``config``: its config dataclass (no torch at import), held by ``TrainConfig.model`` and written into
  ``config.json`` tagged ``{"kind": name, ...}``; it has ``from_dict`` (the inverse of ``dataclasses.asdict``
  after a JSON round trip);
- ``configure(config, data)``: the config with its data-dependent fields filled in (e.g. the image shape);
- ``build(config)``: the model, an ``nn.Module`` with ``guide(x)`` and either ``prior()``/``likelihood(z)`` or
  ``log_prob(x, z)`` (``elbo.protocols``);
- ``unit``: what one data point is, for the units bounds are reported in ("nats per image");
- ``num_samples``: the K of ``elbo evaluate``'s ``log p(x)`` by importance sampling when none is given;
- ``figures(run, test, labels, kl)``: the kind's figures for the report, ``(name, caption, Figure)``
  triples and notes on figures it cannot draw;
- ``metrics(run, test, per_point)``: optional, run without gradients; the kind's own measures, added to
  ``evaluation.json``: numbers under ``"metrics"`` (shown in the tables), anything else under ``"details"`` (e.g. a
  topic model's top words). ``per_point``: each estimate of ``elbo.evaluate.evaluate`` for every test point;
- ``sections(run, test)``: optional; the report's sections of the kind's own, ``(heading, HTML)`` pairs placed
  before the figures (the HTML is the kind's: escape what it did not write);
- ``add_arguments(group)`` and ``config_from_arguments(args)``: optional; the kind's options of ``elbo train``
  (an argparse group) and its config from them (no torch in either; without them ``elbo train`` uses the config's
  defaults).

Each callable may be given as ``"module:attribute"``, imported on first use, so that a kind's registration costs
no import of torch. A data set (``Dataset``) names its kind and its loader ``load(data_dir=, val_size=, download=)``,
which returns an object with the ``elbo.protocols.Data`` interface. A data set may have settings of its own (how a
text is tokenised): ``options``, a frozen dataclass with ``from_dict`` (no torch), held by ``TrainConfig.data_options``
and given to the loader as ``load(..., options=)``; ``add_arguments(group)`` and ``options_from_arguments(args)``, its
options of ``elbo train`` and the dataclass from them. A data set without ``options`` is loaded without the
argument. A data set that reads no files (generated, or bundled with a package) says
so, ``reads_files=False``, and a ``data_dir`` given for it is refused rather than ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import InputError
from .registry import DATASETS, KINDS, resolve

__all__ = ["Kind", "Dataset", "HOOKS", "kind_of", "load_data", "SPLITS"]

SPLITS = ("train", "val", "test")  # the splits every data set has (val may be empty)


Hook = Callable[..., Any] | str  # a function, or "module:attribute" imported on first use


@dataclass(frozen=True)
class Kind:
    """A model kind: the fields above; ``configure`` and ``build`` are required, the other hooks optional."""

    name: str
    config: type
    unit: str
    configure: Hook
    build: Hook
    num_samples: int = 5000
    figures: Hook | None = None
    metrics: Hook | None = None
    sections: Hook | None = None
    add_arguments: Hook | None = None
    config_from_arguments: Hook | None = None
    description: str = ""

    def call(self, hook: str, *args, **kwargs):
        """The hook ``hook`` (one of ``HOOKS``) called with the arguments; ``None`` for a hook the kind has not."""
        if hook not in HOOKS:
            raise ValueError(f"a kind has no hook {hook!r}; its hooks are {', '.join(HOOKS)}")
        function = getattr(self, hook)
        return None if function is None else resolve(function)(*args, **kwargs)


HOOKS = ("configure", "build", "figures", "metrics", "sections", "add_arguments", "config_from_arguments")


@dataclass(frozen=True)
class Dataset:
    """A data set: its kind's name, its loader, and optionally its own settings (``options``) and their options."""

    kind: str
    load: Hook
    description: str = ""
    options: type | None = None
    add_arguments: Hook | None = None
    options_from_arguments: Hook | None = None
    reads_files: bool = True


def kind_of(config) -> Kind:
    """The registered kind whose config class ``config`` is an instance of."""
    for name in KINDS:
        if isinstance(config, KINDS[name].config):
            return KINDS[name]
    raise TypeError(f"{type(config).__name__} is the config of no registered model kind")


def load_data(name: str, *, data_dir=None, val_size: int | None = None, download: bool = True, options=None):
    """Data set ``name`` (one of ``DATASETS``), loaded by its own loader; ``options``: the data set's settings
    (``None``: its defaults), passed on only to a data set that has ``options``."""
    dataset = DATASETS[name]
    if not dataset.reads_files and data_dir is not None:
        raise InputError(f"data_dir: data set {name!r} reads no files ({dataset.description}), got {str(data_dir)!r}",
                         argument="data_dir")
    if dataset.options is None and options is not None:
        raise InputError(f"data set {name!r} has no options, got {options!r}", argument="options")
    settings = {} if dataset.options is None else {"options": dataset.options() if options is None else options}
    return resolve(dataset.load)(data_dir=data_dir, val_size=val_size, download=download, **settings)
