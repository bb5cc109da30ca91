"""What every command shares: one-line errors, size options, exit codes."""

from __future__ import annotations

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


def run_group(group: click.Group, argv: list[str] | None = None) -> NoReturn:
    """Run a click group; turn user errors, missing files and Ctrl-C into one line."""
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
        fail(f"{e.filename or ''}: {e.strerror or e}")
    sys.exit(code if isinstance(code, int) else EXIT_OK)


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


CHECKPOINT_HELP = "checkpoint folder, or a run folder (its latest epoch)"

# `--checkpoint CKPT` of the commands that read one trained model.
checkpoint_option = click.option(
    "--checkpoint", required=True, type=click.Path(path_type=Path), help=CHECKPOINT_HELP
)
