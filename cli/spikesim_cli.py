"""``spikesim``: video to spike streams, and back to images."""

from __future__ import annotations

import click

from spikesim import __version__

from . import commands_convert, commands_core, commands_events
from ._common import run_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="spikesim")
def app() -> None:
    """Convert videos and video datasets to spike-camera streams, and reconstruct images."""


for _command in (*commands_core.COMMANDS, *commands_convert.COMMANDS, *commands_events.COMMANDS):
    app.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    run_group(app, argv)
