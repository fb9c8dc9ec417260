"""``casereport version``, ``casereport completion`` and ``--no-color`` on every command.

``version`` reads the versions of the key dependencies from their installed metadata
(``importlib.metadata``) rather than importing them: pulumi alone takes a second to
import, and a version report must not fail because a package is broken.
"""

from __future__ import annotations

from typing import Any

import click

from casereport import __version__
from casereport.terminal import disable_colour

__all__ = ["add_no_color", "completion_command", "version_command", "version_info"]

# The packages whose versions a bug report needs; pulumi and obstore are optional extras.
KEY_PACKAGES = ("click", "httpx", "jinja2", "pyyaml", "obstore", "pulumi")


def version_info() -> dict[str, Any]:
    """casereport's, Python's, the platform's and the key packages' versions (None for a
    package that is not installed)."""
    import platform
    from importlib import metadata

    packages: dict[str, str | None] = {}
    for name in KEY_PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {
        "casereport": __version__,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": packages,
    }


@click.command("version")
@click.option("--json", "as_json", is_flag=True, help="Print the versions as a JSON object.")
def version_command(as_json: bool) -> None:
    """Show the versions of casereport, Python, the platform and key dependencies.

    Packages that are not installed (the optional obstore and pulumi) show as
    "not installed" (null in JSON). Paste the output into a bug report.

    \b
    Examples:
      casereport version
      casereport version --json
    """
    info = version_info()
    if as_json:
        import json

        click.echo(json.dumps(info, indent=2, sort_keys=True))
        return
    click.echo(f"casereport {info['casereport']}")
    click.echo(f"Python {info['python']} ({info['implementation']}) on {info['platform']}")
    width = max(len(name) for name in info["packages"])
    for name, version in info["packages"].items():
        click.echo(f"  {name:<{width}}  {version or 'not installed'}")


_SHELLS = ("bash", "zsh", "fish")


@click.command("completion")
@click.argument("shell", type=click.Choice(_SHELLS))
@click.pass_context
def completion_command(ctx: click.Context, shell: str) -> None:
    """Print the shell completion script for SHELL (bash, zsh or fish).

    Load it in your shell's start-up file so that commands, options and choices
    complete with Tab.

    \b
    Examples:
      casereport completion bash > ~/.local/share/bash-completion/completions/casereport
      casereport completion zsh > ~/.zfunc/_casereport   # with fpath+=(~/.zfunc)
      casereport completion fish > ~/.config/fish/completions/casereport.fish
    """
    from click.shell_completion import get_completion_class

    completion_class = get_completion_class(shell)
    if completion_class is None:  # (click knows the three choices above)
        raise click.UsageError(f"no completion for {shell}")
    root = ctx.find_root()
    completion = completion_class(root.command, {}, "casereport", "_CASEREPORT_COMPLETE")
    click.echo(completion.source())


def _no_color(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        disable_colour()


_NO_COLOR_HELP = "No colour in the output (as NO_COLOR=1 does)."


def _no_color_option() -> click.Option:
    return click.Option(
        ["--no-color"],
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_no_color,
        help=_NO_COLOR_HELP,
    )


def add_no_color(command: click.Command) -> None:
    """``--no-color`` on ``command`` and every command under it (as Terraform's
    ``-no-color`` is on each command), so it works wherever it is typed."""
    if not any(param.name == "no_color" for param in command.params):
        command.params.append(_no_color_option())
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_no_color(sub)
