"""``elbo report``: RUN/report.html."""

from __future__ import annotations

from ..configs import EvaluateConfig
from ._common import add_command, add_run_arguments, check_data_dir, set_threads

__all__ = ["add_report"]


def add_report(commands) -> None:
    report = add_command(commands, "report", help="RUN/report.html: tables and figures of a run",
        description="Write a self-contained RUN/report.html (figures embedded as PNG, also saved in RUN/figures/): "
                    "the evaluation, the ELBO surgery and the diagnostics where their JSON files exist, KL per unit "
                    "and a collapse warning, training curves, reconstructions, prior samples, latent traversals, "
                    "for 2-D latents the learned manifold and the encodings by label, and the configuration.")
    report.add_argument("--compute", action="store_true",
                        help="compute evaluation.json and surgery.json with the defaults of `elbo evaluate` and `elbo "
                             "surgery` where they are missing or older than the checkpoint (minutes on MNIST)")
    add_run_arguments(report, EvaluateConfig, other_data=False, batch_size=False, json=False)
    report.set_defaults(handler=_report)


def _report(args) -> int:
    from ..report import write_report

    set_threads(args)
    check_data_dir(args)
    print(write_report(args.run_dir, compute=args.compute, data_dir=args.data_dir, device=args.device,
                       seed=args.seed, progress=not args.quiet))
    return 0
