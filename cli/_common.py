"""What every command shares: one-line errors, size options, exit codes."""

from __future__ import annotations

import errno
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from spikesim import SpikesimError, parse_size

EXIT_OK = 0
EXIT_FAILED = 1  # the run went through but something failed (e.g. some clips)
EXIT_USAGE = 2  # bad command line or bad input


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print one line on stderr and exit; never a traceback."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def user_errors() -> tuple[type[BaseException], ...]:
    """Exception types whose message is meant for the user (spklip adds its own)."""
    kinds: list[type[BaseException]] = [SpikesimError]
    try:
        from spklip.errors import SpklipError
    except ImportError:  # spklip not installed: spikesim alone still works
        pass
    else:
        kinds.append(SpklipError)
    return tuple(kinds)


def _sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def stop_on_sigterm() -> None:
    """Make SIGTERM (``kill``, a scheduler's time limit) stop the command as Ctrl-C does:
    finished work saved, temporaries removed, worker processes stopped, one line."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:  # keep a handler set by a host
        signal.signal(signal.SIGTERM, _sigterm)


def run_group(group: click.Group, argv: list[str] | None = None) -> NoReturn:
    """Run a click group; turn user errors, missing files and Ctrl-C into one line."""
    stop_on_sigterm()
    try:
        code = group.main(args=argv, standalone_mode=False)
    except click.exceptions.Abort:
        fail("interrupted; finished work is kept, run the same command again to resume", 130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        fail("interrupted; finished work is kept, run the same command again to resume", 130)
    except user_errors() as e:
        fail(str(e))
    except FileNotFoundError as e:
        fail(f"{e.filename or e}: no such file")
    except IsADirectoryError as e:
        fail(f"{e.filename or e}: is a directory, expected a file")
    except PermissionError as e:
        fail(f"{e.filename or e}: permission denied")
    except OSError as e:
        fail(os_error_line(e), EXIT_FAILED)
    sys.exit(code if isinstance(code, int) else EXIT_OK)


def os_error_line(err: OSError) -> str:
    """One line for an operating-system error: the file (when known), what went wrong, and for
    a full disk what to do."""
    what = err.strerror or str(err) or type(err).__name__
    line = f"{err.filename}: {what}" if err.filename else what
    if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        line += "; nothing was saved under that name: free some space and run again"
    return line


def size_option(default: str | None = "240x320", help: str = "frame size HxW") -> Callable:
    """``--size HxW`` parsed into ``(H, W)``."""

    def convert(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is None:
            return None
        try:
            return parse_size(value)
        except SpikesimError as e:
            raise click.BadParameter(str(e)) from None

    return click.option(
        "--size", default=default, callback=convert, show_default=True, help=help, metavar="HxW"
    )


# ---------------------------------------------------------------------------- shared options
# Every option that several commands take is defined here once, with one name, one meaning
# and one default (docs/conventions.md, "Command line").

CHECKPOINT_HELP = (
    "a run folder (its latest epoch), a checkpoint folder, or a checkpoints/latest pointer"
)

# `--checkpoint CKPT` of the commands that read one trained model.
checkpoint_option = click.option(
    "--checkpoint",
    required=True,
    type=click.Path(path_type=Path),
    help=CHECKPOINT_HELP,
)

# `--data`: what spklip reads.
data_option = click.option(
    "--data",
    required=True,
    type=click.Path(path_type=Path),
    help="converted folder or packed .h5 (spikesim convert / pack)",
)


def split_option(default: str = "test", what: str = "read") -> Callable:
    """``--split``: train / val / test, or 'all'. Evaluation reads ``test`` by default."""
    return click.option(
        "--split",
        default=default,
        show_default=True,
        help=f"split to {what}: train, val, test, or all (every clip)",
    )


def out_dir_option(default: Path | None = None, what: str = "the outputs") -> Callable:
    """``--out DIR`` of a command that writes several files (created if missing)."""
    return click.option(
        "--out",
        type=click.Path(path_type=Path, file_okay=False),
        default=default,
        show_default=default is not None,
        help=f"folder for {what} (created if missing)",
    )


# `--device`: one rule everywhere (spklip.device.pick_device).
device_option = click.option(
    "--device",
    default="auto",
    show_default=True,
    help="auto (CUDA when available, else CPU), cpu, cuda, cuda:N",
)
# `--threads`: torch's CPU threads in this process.
threads_option = click.option(
    "--threads", type=click.IntRange(min=1), help="torch CPU threads  [default: torch's]"
)
# `--loader-workers`: DataLoader processes (never the conversion processes of `--workers`).
loader_workers_option = click.option(
    "--loader-workers",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="DataLoader worker processes (0: read in this process)",
)


def limit_option(default: int | None = None, what: str = "clips") -> Callable:
    """``--limit N``: use at most N clips (spread over the classes where it says so)."""
    return click.option(
        "--limit",
        type=click.IntRange(min=1),
        default=default,
        show_default=default is not None,
        metavar="N",
        help=f"use at most N {what}" + ("" if default is not None else "  [default: all]"),
    )


seed_option = click.option(
    "--seed", type=int, default=0, show_default=True, help="seed of every random draw"
)
overwrite_option = click.option(
    "--overwrite", is_flag=True, help="replace outputs that exist (never an input)"
)
# `--half-window H`: SpikeCV's name for both TFI's crop and TFP's averaging half window.
half_window_option = click.option(
    "--half-window",
    "half_window",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="half window in spike frames (TFI: frames cropped at each end; TFP: averaged on "
    "each side)",
)


def interp_option(default: str) -> Callable:
    """``--interp``: how new frames between source frames are made."""
    return click.option(
        "--interp",
        default=default,
        show_default=True,
        help="interpolation between source frames: flow | linear | none",
    )


def option_group(*options: Callable) -> Callable:
    """One decorator applying ``options`` (``click.option(...)``) so that they list in the
    order given."""

    def apply(command: Callable) -> Callable:
        for option in reversed(options):
            command = option(command)
        return command

    return apply


def encoder_options(command: Callable) -> Callable:
    """The integrate-and-fire encoder's options: ``--threshold``, ``--init``, ``--noise``."""
    from spikesim import NOISE_PRESETS

    return option_group(
        click.option(
            "--threshold",
            type=float,
            default=5.0,
            show_default=True,
            help="integrate-and-fire threshold",
        ),
        click.option(
            "--init",
            type=click.Choice(["random", "zero"]),
            default="random",
            show_default=True,
            help="initial membrane potential",
        ),
        click.option(
            "--noise",
            type=click.Choice(sorted(NOISE_PRESETS)),
            default="none",
            show_default=True,
            help="sensor noise preset",
        ),
    )(command)


def set_threads(threads: int | None) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def split_value(split: str) -> str | None:
    """``--split`` as the library takes it: None for 'all'."""
    return None if split == "all" else split


def refuse_existing(*paths: Path, overwrite: bool) -> None:
    """One line and exit 2 when an output exists and ``--overwrite`` was not given."""
    if overwrite:
        return
    for path in paths:
        if path.exists():
            fail(f"{path} exists; pass --overwrite to replace it")


def check_not_input(out: Path, *inputs: Path) -> None:
    """One line and exit 2 when ``out`` is one of the command's inputs or lies inside an input
    folder (a dataset it reads): no command writes over what it reads, even with --overwrite."""
    target = Path(out).resolve()
    for given in inputs:
        source = Path(given).resolve()
        if target == source:
            fail(f"{out} is an input of this command ({given}); write the output elsewhere")
        if source.is_dir() and source in target.parents:
            fail(f"{out} is inside {given}, which this command reads; write the output elsewhere")
