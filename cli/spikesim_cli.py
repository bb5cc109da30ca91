"""``spikesim``: video to spike streams, and back to images."""

from __future__ import annotations

import click

from spikesim import __version__

from ._common import run_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="spikesim")
def app() -> None:
    """Convert videos and video datasets to spike-camera streams, and reconstruct images."""


def _register() -> None:
    import importlib

    for name in ("commands_core", "commands_convert"):
        try:  # TEMPORARY while the modules land; removed before release
            module = importlib.import_module(f"cli.{name}")
        except ImportError:
            continue
        for cmd in module.COMMANDS:
            app.add_command(cmd)


_register()


def main(argv: list[str] | None = None) -> None:
    run_group(app, argv)
