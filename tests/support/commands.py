"""Every command of a click group, its lazily loaded subcommands included (a group's
`.commands` holds only those loaded so far: walk `list_commands`/`get_command`)."""

from __future__ import annotations

import click


def every_command(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], click.Command]]:
    """(path, command) of every command under `group`, depth first."""
    ctx = click.Context(group)
    found: list[tuple[tuple[str, ...], click.Command]] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, (*prefix, name)
        found.append(((*prefix, name), command))
        if isinstance(command, click.Group):
            found += every_command(command, (*prefix, name))
    return found
