"""``spklip energy`` and ``spklip analyze hsfe | domain-gap``: the energy table and the paper's
analysis figures (HSFE temporal dynamics, sim-to-real statistics)."""

from __future__ import annotations

import re
from pathlib import Path

import click

from ._common import (
    CHECKPOINT_HELP,
    checkpoint_option,
    data_option,
    device_option,
    limit_option,
    out_dir_option,
    set_threads,
    split_option,
    split_value,
    threads_option,
)
from .commands_spklip import _one_line_warnings

_NAME = re.compile(r"^[A-Za-z][\w-]*$")
_DEFAULT_OUT = Path("runs") / "analysis"


def _named_checkpoints(values: tuple[str, ...]) -> dict[str, Path] | list[Path]:
    """``PATH`` or ``NAME=PATH`` per --checkpoint; all named, or none (named by encoder)."""
    named: dict[str, Path] = {}
    plain: list[Path] = []
    for value in values:
        name, sep, path = value.partition("=")
        if sep and _NAME.match(name) and not Path(value).exists():
            if name in named:
                raise click.BadParameter(
                    f"the name {name!r} is given twice", param_hint="--checkpoint"
                )
            named[name] = Path(path)
        else:
            plain.append(Path(value))
    if named and plain:
        raise click.BadParameter(
            "name all checkpoints (NAME=PATH) or none", param_hint="--checkpoint"
        )
    return named or plain


_out_option = out_dir_option(_DEFAULT_OUT, "the JSON, Markdown and PNG outputs")


@click.command("energy", short_help="Energy table of video encoders on real clips (paper Table 6).")
@click.option(
    "--checkpoint",
    "checkpoints",
    required=True,
    multiple=True,
    metavar="[NAME=]CKPT",
    help=f"{CHECKPOINT_HELP}; repeat for several encoders (named ann / snn unless NAME= given)",
)
@data_option
@split_option()
@limit_option(8, "clips, spread over the classes (results are per clip)")
@_out_option
@click.option(
    "--spike-bits",
    type=click.IntRange(1, 32),
    default=1,
    show_default=True,
    help="bits per stored 0/1 spike in the memory model (32: spikes stored as words)",
)
@click.option("--layers", is_flag=True, help="also write per-layer counts into energy.json")
@click.option(
    "--eval",
    "evals",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="eval.json of `spklip eval` for each --checkpoint, in the same order: its "
    "zero-shot Top-1 is shown next to the joules",
)
@device_option
@threads_option
def energy_cmd(
    checkpoints: tuple[str, ...],
    data: Path,
    split: str,
    limit: int,
    out: Path,
    spike_bits: int,
    layers: bool,
    evals: tuple[Path, ...],
    device: str,
    threads: int | None,
) -> None:
    """Operation counts and energy of video encoders on real clips (the paper's Table 6).

    MACs of dense layers, synaptic operations from measured firing rates, neuron updates and
    memory accesses, priced at 4.6 pJ per MAC, 0.9 pJ per SOP and neuron update and 5.0 pJ per
    32-bit memory access. Writes OUT/energy.json and OUT/energy.md and prints the table.
    """
    _one_line_warnings()
    set_threads(threads)
    from spklip.evaluation.energy import energy_report, energy_report_markdown

    results = energy_report(
        _named_checkpoints(checkpoints),
        data,
        split=split_value(split),
        clips=limit,
        out=out,
        device=device,
        include_layers=layers,
        spike_bits=spike_bits,
        evals=list(evals) if evals else None,
    )
    click.echo(energy_report_markdown(results))
    click.echo(f"written: {out / 'energy.json'}, {out / 'energy.md'}")


@click.group("analyze", short_help="Analysis figures: HSFE dynamics (Fig 5), domain gap (Fig A1).")
def analyze_group() -> None:
    """The paper's analysis figures: HSFE temporal dynamics, sim-to-real statistics."""


@analyze_group.command(
    "hsfe", short_help="HSFE temporal-dynamics heatmaps of a checkpoint (paper Fig 5)."
)
@checkpoint_option
@data_option
@split_option()
@limit_option(4, "clips, spread over the classes (one heatmap each, plus their mean)")
@click.option(
    "--mode",
    type=click.Choice(["auto", "blocks", "windows"]),
    default="auto",
    show_default=True,
    help="temporal points: HSFE's blocks, or sub-windows of each block (auto: blocks if >= 3)",
)
@click.option(
    "--windows",
    type=click.IntRange(min=2),
    default=5,
    show_default=True,
    help="sub-windows per block in windows mode",
)
@_out_option
@device_option
@threads_option
def hsfe_cmd(
    checkpoint: Path,
    data: Path,
    split: str,
    limit: int,
    mode: str,
    windows: int,
    out: Path,
    device: str,
    threads: int | None,
) -> None:
    """HSFE temporal dynamics (paper Fig. 5): cosine similarity of the mean-removed HSFE
    features of successive temporal points of each clip. Writes OUT/hsfe_dynamics.png and
    OUT/hsfe_dynamics.json (see docs/analysis.md)."""
    _one_line_warnings()
    set_threads(threads)
    from spklip.evaluation.dynamics import hsfe_dynamics

    result = hsfe_dynamics(
        checkpoint,
        data,
        out / "hsfe_dynamics.png",
        split=split_value(split),
        clips=limit,
        mode=mode,
        windows=windows,
        out_json=out / "hsfe_dynamics.json",
        device=device,
    )
    lags = ", ".join(f"lag {k}: {v:+.2f}" for k, v in result["mean_by_lag"].items())
    click.echo(
        f"{len(result['clips'])} clips, {len(result['points'])} temporal points "
        f"({result['mode']}); mean cosine by lag: {lags} "
        f"(unrelated points: {result['unrelated_level']:+.2f})\n"
        f"written: {result['figure']}, {out / 'hsfe_dynamics.json'}"
    )


def _names(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, str]:
    parts = tuple(p.strip() for p in value.split(","))
    if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
        raise click.BadParameter(f"{value!r}: give two different names, e.g. sim,real")
    return parts  # type: ignore[return-value]


@analyze_group.command(
    "domain-gap", short_help="Firing statistics of two converted datasets (paper Fig A1)."
)
@click.argument("data_a", type=click.Path(path_type=Path))
@click.argument("data_b", type=click.Path(path_type=Path))
@click.option(
    "--names", default="sim,real", show_default=True, callback=_names, help="labels of A,B"
)
@split_option(what="measure")
@limit_option(what="clips per dataset, spread over the classes")
@click.option(
    "--frames",
    type=click.IntRange(min=1),
    help="spike frames read from the start of each clip [default: the shortest clip]",
)
@_out_option
def domain_gap_cmd(
    data_a: Path,
    data_b: Path,
    names: tuple[str, str],
    split: str,
    limit: int | None,
    frames: int | None,
    out: Path,
) -> None:
    """Sim-to-real statistics of two converted datasets (paper Fig. A1): per-pixel
    spike-count histograms, spikes per frame over time, spatial activity maps. Writes
    OUT/domain_gap.png and OUT/domain_gap.json."""
    from spklip.evaluation.domain_gap import domain_gap

    result = domain_gap(
        data_a,
        data_b,
        out / "domain_gap.png",
        names=names,
        split=split_value(split),
        max_clips=limit,
        frames=frames,
        out_json=out / "domain_gap.json",
    )
    for name, s in result["datasets"].items():
        click.echo(
            f"{name}: {s['clips']} clips x {s['frames_per_clip']} frames, mean firing rate "
            f"{s['mean_firing_rate']:.4f}, median per-pixel count {s['per_pixel_count_median']}, "
            f"temporal CV {s['temporal_cv']:.3f}, spatial CV {s['spatial_cv']:.3f}"
        )
    gap = result["gap"]
    ratio = gap["firing_rate_ratio"]
    click.echo(
        f"gap ({gap['of']}): firing-rate ratio {'-' if ratio is None else f'{ratio:.3f}'}, "
        f"count-histogram JS divergence {gap['count_histogram_js_bits']:.3f} bits\n"
        f"written: {result['figure']}, {out / 'domain_gap.json'}"
    )


COMMANDS: list[click.Command] = [energy_cmd, analyze_group]
