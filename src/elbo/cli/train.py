"""``elbo train``: a ``TrainConfig`` from the options (choices and defaults from ``elbo.configs`` and the registries;
each model kind and each data set with options adds its own), then ``elbo.train.train`` or ``resume``."""

from __future__ import annotations

import json

from ..configs import IWAE_ESTIMATORS, IWAE_SCHEDULE_EPOCHS, OBJECTIVES, SCHEDULES, TrainConfig
from ..kinds import kind_of
from ..registry import DATASETS, KINDS, resolve
from ._common import (
    UsageError,
    add_command,
    add_threads,
    default_of,
    non_negative_int,
    positive_float,
    positive_int,
    seed,
    set_threads,
)

__all__ = ["add_train"]


def _default(field: str):
    return default_of(TrainConfig, field)


def add_train(commands) -> None:
    parser = add_command(commands, "train", help="train an amortized model (a VAE or an IWAE on images, ...)",
        description="Train a model of one of the registered kinds by the ELBO (closed-form KL where there is one) or "
                    "the K-sample importance weighted bound, writing config.json, metrics.jsonl (one line per epoch) "
                    "and checkpoint.pt (every epoch, atomically) to --out. --resume DIR continues an interrupted run "
                    "exactly. The defaults are Burda et al. (2015): for images 784-200-200-50 tanh networks; batch "
                    "20, Adam(0.9, 0.999, eps 1e-4).")
    settings = []  # the dests of the options a run's config holds, refused with --resume

    def option(group, *flags, **kwargs):
        settings.append(group.add_argument(*flags, **kwargs))

    data = parser.add_argument_group("data")
    option(data, "--data", choices=DATASETS.names(), help=f"data set [default: {_default('data')}]")
    option(data, "--data-dir", metavar="DIR",
           help="where the data files are (DIR/<data set's folder>/ or DIR itself); missing files are downloaded "
                "there when the machine is online [default: data]")
    option(data, "--val-size", type=non_negative_int, metavar="N",
           help="points held out of training for the validation bound [default: the data set's: 10000 for MNIST; "
                "none for 20news and a corpus of your own (ProdLDA's protocol); BBC News's own split; a tenth "
                "otherwise]")
    data_options = _add_registered(parser, DATASETS, "data set", settings)
    model = parser.add_argument_group("model")
    option(model, "--model", choices=KINDS.names(), help="model kind [default: the data set's]")
    option(model, "--objective", choices=OBJECTIVES,
           help=f"the ELBO or the IWAE bound [default: {_default('objective')}]")
    option(model, "--k", dest="num_samples", metavar="K", type=positive_int,
           help=f"samples of z per data point [default: {_default('num_samples')}]")
    option(model, "--estimator", choices=IWAE_ESTIMATORS,
           help=f"gradient estimator of the IWAE bound [default: {_default('estimator')}]")
    option(model, "--latent", type=positive_int, nargs="+", metavar="D",
           help="the size of the latents, for the kinds that take it: images, each stochastic layer's, bottom first "
                "(overrides --layers' preset) [default: 50]; spikes, each bin's z_t [default: 3]; the topics kind's "
                "latents are its --topics")
    kind_options = _add_registered(parser, KINDS, "model kind", settings)
    _add_optimization(parser, option)
    _add_run_directory(parser)
    parser.set_defaults(handler=_train, settings=settings, data_set_options=data_options, kind_options=kind_options)


def _add_registered(parser, registry, title: str, settings: list) -> dict:
    """A group of options for each entry of ``registry`` that has ``add_arguments``, titled "TITLE NAME"; their
    actions, by the entry's name, also added to ``settings``."""
    added = {}
    for name in registry:
        if registry[name].add_arguments is not None:
            group = parser.add_argument_group(f"{title} {name}")
            before = len(parser._actions)
            resolve(registry[name].add_arguments)(group)
            added[name] = parser._actions[before:]
            settings.extend(added[name])
    return added


def _add_optimization(parser, option) -> None:
    group = parser.add_argument_group("optimization")
    option(group, "--epochs", type=positive_int,
           help=f"epochs [default: {_default('epochs')}, or {IWAE_SCHEDULE_EPOCHS} with --schedule iwae]")
    option(group, "--lr", type=positive_float, help=f"Adam's learning rate [default: {_default('lr')}]")
    option(group, "--schedule", choices=SCHEDULES,
           help=f"constant lr; the IWAE paper's, 3^i epochs at lr·10^(-i/7), i = 0..7; or cosine, from lr towards 0 "
                f"over the epochs (lr·(1 + cos(π·epoch/epochs))/2) "
                f"[default: {_default('schedule')}]")
    option(group, "--batch-size", type=positive_int,
           help=f"the global batch: with --nproc N each process takes 1/N of it [default: {_default('batch_size')}]")
    option(group, "--seed", type=seed, help=f"[default: {_default('seed')}]")
    option(group, "--device", help=f"torch device, e.g. cpu or cuda [default: {_default('device')}]")
    option(group, "--compile", action="store_true", default=None,
           help="run the objective through torch.compile (tens of seconds to start; faster after)")
    group.add_argument("--nproc", type=positive_int, default=1, metavar="N",
                       help="data-parallel processes on this machine (DistributedDataParallel; gloo on CPU, nccl on "
                            "GPU); for several machines start `elbo train` with torchrun instead")


def _add_run_directory(parser) -> None:
    group = parser.add_argument_group("run directory")
    group.add_argument("--out", metavar="DIR", help="the new run's directory")
    group.add_argument("--force", action="store_true", help="replace the run files already in --out")
    group.add_argument("--resume", metavar="DIR",
                       help="continue the interrupted run in DIR with its own settings; to train a finished run "
                            "further, raise epochs in DIR/config.json first (any other edit there is refused)")
    group.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    add_threads(group)


def _train(args) -> int:
    from ..distributed import is_main_process
    from ..train import resume, train

    set_threads(args)
    progress = not args.quiet
    if args.resume is not None:
        given = [action.option_strings[0] for action in args.settings if getattr(args, action.dest) is not None]
        if given or args.out is not None or args.force:
            raise UsageError(f"--resume continues a run with its own settings; drop "
                             f"{', '.join(given + ['--out'] * (args.out is not None) + ['--force'] * args.force)}")
        path = resume(args.resume, nproc=args.nproc, progress=progress, threads=args.threads)
    elif args.out is None:
        raise UsageError("say where the run goes with --out DIR (or continue a run with --resume DIR)")
    else:
        path = train(_config(args), args.out, nproc=args.nproc, force=args.force, progress=progress,
                     threads=args.threads)
    if is_main_process():  # under torchrun, every process runs this command; one of them reports
        _print_last_epoch(path)
    return 0


def _config(args) -> TrainConfig:
    if args.data is None and args.data_dir is not None:
        raise UsageError("--data-dir without --data: say which data set is in it (your own: --data images, corpus or "
                         "spikes); the default, digits, reads no files")
    data = args.data or _default("data")
    if args.model is not None and args.model != DATASETS[data].kind:
        same = [name for name in DATASETS if DATASETS[name].kind == args.model]
        raise UsageError(f"--model {args.model}: --data {data} is of kind {DATASETS[data].kind}; the data sets of kind "
                         f"{args.model} are {', '.join(same) or 'none'}")
    kind = KINDS[args.model or DATASETS[data].kind]
    model = _model_config(args, kind, data)
    fields = ("data_dir", "val_size", "objective", "num_samples", "estimator", "lr", "schedule", "batch_size", "seed",
              "device", "compile")
    given = {name: getattr(args, name) for name in fields if getattr(args, name) is not None}
    epochs = args.epochs or (IWAE_SCHEDULE_EPOCHS if args.schedule == "iwae" else _default("epochs"))
    return TrainConfig(data=data, data_options=_data_options(args, data), model=model, epochs=epochs, **given)


class _Reads:
    """``args`` as a kind's ``config_from_arguments`` sees it, noting the options it reads."""

    def __init__(self, args):
        self._args, self.read = args, set()

    def __getattr__(self, name):
        self.read.add(name)
        return getattr(self._args, name)


def _model_config(args, kind, data: str):
    """The config of ``kind`` from the options; an option given that the kind does not read (another kind's, or one
    the kinds share that this one has not) is refused in one line naming the kind it belongs to."""
    reads = _Reads(args)
    model = kind.config() if kind.config_from_arguments is None else resolve(kind.config_from_arguments)(reads)
    owners = {action.dest: name for name, actions in args.kind_options.items() for action in actions}
    shared = [action for action in args.settings if action.dest == "latent"]
    for action in [action for actions in args.kind_options.values() for action in actions] + shared:
        if getattr(args, action.dest) is not None and action.dest not in reads.read:
            flag, of = action.option_strings[0], f"the {kind.name} kind (--data {data}'s)"
            raise UsageError(f"{flag}: an option of the {owners[action.dest]} kind, not of {of}; leave it out"
                             if action.dest in owners else f"{flag}: not an option of {of}; leave it out")
    return model


def _data_options(args, data: str):
    """The options of data set ``data`` from the command line (``None`` for one without options); the options of
    another data set given are refused."""
    for name, actions in args.data_set_options.items():
        given = [action.option_strings[0] for action in actions if getattr(args, action.dest) is not None]
        if given and name != data:
            raise UsageError(f"{', '.join(given)}: {'an option' if len(given) == 1 else 'options'} of --data {name} "
                             f"only, not of {data}")
    dataset = DATASETS[data]
    return None if dataset.options_from_arguments is None else resolve(dataset.options_from_arguments)(args)


def _print_last_epoch(path) -> None:
    lines = (path / "metrics.jsonl").read_text().splitlines()
    if not lines:
        print(f"run {path}: no epoch finished")
        return
    last = json.loads(lines[-1])
    unit = kind_of(TrainConfig.from_dict(json.loads((path / "config.json").read_text())).model).unit
    val = f", validation bound {last['val_bound']:.3f}" if "val_bound" in last else ""
    print(f"run {path}: epoch {last['epoch']}, training bound {last['train_bound']:.3f}{val} nats per {unit}")
