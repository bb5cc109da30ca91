"""``spklip``: train and evaluate SPKLIP on converted spike datasets."""

from __future__ import annotations

import click

from spklip import __version__

from . import commands_analysis, commands_av, commands_distill, commands_fewshot, commands_spklip
from ._common import run_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="spklip")
def app() -> None:
    """Train, evaluate and analyse SPKLIP spike-video / text models."""


for _command in (
    *commands_spklip.COMMANDS,
    *commands_fewshot.COMMANDS,
    *commands_analysis.COMMANDS,
    *commands_distill.COMMANDS,
    *commands_av.COMMANDS,
):
    app.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    run_group(app, argv)
