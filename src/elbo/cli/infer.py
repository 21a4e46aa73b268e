"""``elbo infer``: what a trained run says about new data. A spike-train run: the posterior latents and firing rates
of recordings (a .npz file); a topic run: the topic proportions of new documents (.npz or .csv)."""

from __future__ import annotations

from ._common import UsageError, add_command, add_threads, positive_int, set_threads

__all__ = ["add_infer"]

DEFAULT_SAMPLES = 1000


def add_infer(commands) -> None:
    parser = add_command(
        commands, "infer", help="posterior latents and rates of recordings, or topics of documents, under a run",
        description="A spike-train run (kind spikes): run its encoder over every trial of a .npz file of counts "
                    "(trials, bins, neurons) with the run's bins and neurons, and write to --out each trial's "
                    "posterior mean and standard deviation under q of the latents (latents, latents_sd) and of every "
                    "neuron's firing rate in spikes/s (rates, rates_sd), in closed form, with time, bin_size, "
                    "condition (where the file has it), held_in and the learned timescales; only the held-in neurons "
                    "are read (train with --held-out 0 to read every neuron). A topic run (kind topics): read the "
                    "documents of --data through the run's vocabulary (plain text, one document a line, or LABEL "
                    "idx:count lines in a .feat file) and write each document's topic proportions, their mean and "
                    "standard deviation under q, to --out: a .npz file (proportions, proportions_sd, line, length, "
                    "and the topics: topic_words (K, V), vocabulary, top_words) or a .csv file (one row a document).")
    parser.add_argument("run_dir", metavar="RUN", help="run directory written by `elbo train` (spikes or topics)")
    parser.add_argument("--data", metavar="FILE", required=True,
                        help="spikes: a .npz file with counts and bin_size (as `elbo simulate` writes); topics: a "
                             "text file, one document a line, or a .feat file")
    parser.add_argument("--out", metavar="FILE", required=True,
                        help="the file to write: .npz (spikes, topics) or .csv (topics)")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="topics: where the run's corpus is (for its vocabulary), if not where it was trained")
    parser.add_argument("--samples", metavar="S", type=positive_int,
                        help=f"topics, a Gaussian q (ProdLDA, NVDM): draws of softmax(z) for the proportions' mean "
                             f"and sd [default: {DEFAULT_SAMPLES}; a Dirichlet q's are exact]")
    parser.add_argument("--seed", type=int, help="topics, a Gaussian q: random seed of those draws [default: 0]")
    parser.add_argument("--device", default="cpu", help="torch device")
    add_threads(parser)
    parser.set_defaults(handler=_infer)


def _infer(args) -> int:
    import json
    from pathlib import Path

    from .._checks import check_device

    set_threads(args)
    check_device(args.device)
    config = Path(args.run_dir) / "config.json"
    kind = json.loads(config.read_text()).get("model", {}).get("kind") if config.is_file() else None
    if kind == "topics":
        return _topics(args)
    if kind is not None and kind != "spikes":
        raise UsageError(f"{args.run_dir} is a run of kind {kind}: elbo infer reads runs of kind spikes or topics")
    given = [flag for flag, value in (("--data-dir", args.data_dir), ("--samples", args.samples), ("--seed", args.seed))
             if value is not None]
    if given:
        raise UsageError(f"{', '.join(given)}: options of a topic run only, and {args.run_dir} is not one")
    return _spikes(args)


def _spikes(args) -> int:
    from pathlib import Path

    from ..models.spikes.infer import infer_file
    from ..runs import read_checkpoint, restore_model

    run = Path(args.run_dir)
    _, model = restore_model(read_checkpoint(run), run)
    result = infer_file(model.to(args.device).eval(), args.data, args.out, force=args.force, run=str(run))
    trials, bins, neurons = result["rates"].shape
    print(f"wrote {args.out}: rates and rates_sd ({trials}, {bins}, {neurons}), latents and latents_sd "
          f"{result['latents'].shape} of {trials} trials, from the {int(result['held_in'])} held-in neurons")
    return 0


def _topics(args) -> int:
    from ..models.topics.infer import infer_file
    from ..runs import load_run

    run = load_run(args.run_dir, data_dir=args.data_dir, device=args.device)
    given = [flag for flag, value in (("--samples", args.samples), ("--seed", args.seed)) if value is not None]
    if given and run.config.model.model in ("dirichlet", "lda"):
        raise UsageError(f"{', '.join(given)}: the {run.config.model.model} model's q is a Dirichlet, whose "
                         f"proportions' mean "
                         f"and sd are exact; leave it out")
    result = infer_file(run, args.data, args.out, force=args.force, num_samples=args.samples or DEFAULT_SAMPLES,
                        seed=args.seed or 0)
    documents, topics = result["proportions"].shape
    print(f"wrote {args.out}: the proportions of {topics} topics (mean and sd under q) of {documents} documents")
    return 0
