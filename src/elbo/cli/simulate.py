"""``elbo simulate``: a simulated data set with its truth, written to a file that ``elbo train`` reads."""

from __future__ import annotations

from ._common import add_command, positive_int, seed

__all__ = ["add_simulate", "LORENZ_DEFAULTS"]

# simulate_lorenz's defaults (the Lorenz benchmark), here so that `--help` imports no numpy; a test keeps them equal
LORENZ_DEFAULTS = {"num_neurons": 30, "num_conditions": 65, "trials_per_condition": 4, "num_bins": 50}


def add_simulate(commands) -> None:
    parser = add_command(
        commands, "simulate", help="simulate spike trains with a known truth (the Lorenz benchmark) into a .npz file",
        description="Simulate the Lorenz benchmark of LFADS (Sussillo et al. 2016): one Lorenz trajectory per "
                    "condition, shared by its trials, read out by each neuron as a firing rate exp(W x + b), and "
                    "Poisson counts in bins of 20 ms. Writes FILE.npz with counts (trials, bins, neurons), bin_size, "
                    "condition and time, and the truth beside them (rates in spikes/s, latents, W, b); train on it "
                    "with `elbo train --data spikes --data-dir FILE.npz`. The same seed gives the same file.")
    parser.add_argument("simulation", choices=("lorenz",), help="what to simulate")
    parser.add_argument("--out", metavar="FILE", required=True, help="the .npz file to write")
    parser.add_argument("--force", action="store_true", help="replace FILE if it exists")
    parser.add_argument("--seed", type=seed, default=0, help="random seed of the trajectories, readout and counts")
    for flag, field, what in (("--neurons", "num_neurons", "neurons"), ("--conditions", "num_conditions",
                              "conditions (initial states of the Lorenz system)"),
                              ("--trials", "trials_per_condition", "trials of each condition"),
                              ("--bins", "num_bins", "bins of 20 ms a trial")):
        parser.add_argument(flag, dest=field, type=positive_int, default=LORENZ_DEFAULTS[field], metavar="N",
                            help=what)
    parser.set_defaults(handler=_simulate)


def _simulate(args) -> int:
    from ..models.spikes.simulate import save_simulation

    settings = {field: getattr(args, field) for field in LORENZ_DEFAULTS}
    simulation = save_simulation(args.out, args.seed, force=args.force, **settings)
    trials, bins, neurons = simulation["counts"].shape
    print(f"wrote {args.out}: {trials} trials ({args.num_conditions} conditions x {args.trials_per_condition}) of "
          f"{bins} bins of {float(simulation['bin_size']) * 1000:g} ms, {neurons} neurons, "
          f"{int(simulation['counts'].sum())} spikes, with the true rates and latents")
    print(f"train on it with: elbo train --data spikes --data-dir {args.out} --out RUN")
    return 0
