"""``elbo infer``: a spike-train run's posterior latents and firing rates of recordings, written to a .npz file."""

from __future__ import annotations

from ._common import add_command, add_threads, set_threads

__all__ = ["add_infer"]


def add_infer(commands) -> None:
    parser = add_command(
        commands, "infer", help="posterior latents and firing rates of recordings under a spike-train run",
        description="Run the encoder of a trained spike-train model (a run of kind spikes) over every trial of a "
                    ".npz file of counts (trials, bins, neurons) with the run's bins and neurons, and write to --out "
                    "each trial's posterior mean and standard deviation under q of the latents (latents, latents_sd) "
                    "and of every neuron's firing rate in spikes/s (rates, rates_sd), in closed form, with time, "
                    "bin_size, condition (where the file has it), held_in and the learned timescales. Only the "
                    "held-in neurons are read: the rates of the others are predictions.")
    parser.add_argument("run_dir", metavar="RUN", help="run directory written by `elbo train` on spike trains")
    parser.add_argument("--data", metavar="FILE", required=True,
                        help="the recordings: a .npz file with counts and bin_size (as `elbo simulate` writes)")
    parser.add_argument("--out", metavar="FILE", required=True, help="the .npz file to write")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    parser.add_argument("--device", default="cpu", help="torch device")
    add_threads(parser)
    parser.set_defaults(handler=_infer)


def _infer(args) -> int:
    from pathlib import Path

    from .._checks import check_device
    from ..models.spikes.infer import infer_file
    from ..runs import read_checkpoint, restore_model

    set_threads(args)
    check_device(args.device)
    run = Path(args.run_dir)
    _, model = restore_model(read_checkpoint(run), run)
    result = infer_file(model.to(args.device).eval(), args.data, args.out, force=args.force, run=str(run))
    trials, bins, neurons = result["rates"].shape
    print(f"wrote {args.out}: rates and rates_sd ({trials}, {bins}, {neurons}), latents and latents_sd "
          f"{result['latents'].shape} of {trials} trials, from the {int(result['held_in'])} held-in neurons")
    return 0
