"""Entry point of the ``teiji`` command: builds the parser, runs a command, maps errors to exits.

Exit codes: 0 ok, 1 something failed, 2 bad usage or invalid input. User mistakes print one
line on stderr, never a traceback (set TEIJI_DEBUG=1 to see one for internal errors).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence

from engine import __version__
from engine.cli.common import EXIT_FAILED, EXIT_USAGE, CliError
from engine.config import SettingsError

# Each module defines ``register(subparsers)`` and sets ``func`` (args -> exit code) on its parsers.
COMMAND_MODULES = (
    "engine.cli.documents",  # validate, explain, schema
    "engine.cli.tick",  # init, tick, plan
    "engine.cli.lease",  # lease, lease break
    "engine.cli.stored",  # put, get, delete
    "engine.cli.listing",  # list
    "engine.cli.overrides",  # start, stop, override
    "engine.cli.simulate",  # simulate
    "engine.cli.savings",  # savings
    "engine.cli.demo",  # demo
    "engine.cli.completion",  # completion
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse's own errors are usage errors: one line and exit 2.
        self.print_usage(sys.stderr)
        raise CliError(message, code=EXIT_USAGE)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        # An unknown option is refused by the (sub)command it was given to, so the usage
        # printed is that command's (`teiji validate --bogus` shows validate's usage).
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="teiji",
        description="Stop Amazon ECS services outside working hours and bring them back "
        "exactly as they were.",
    )
    parser.add_argument("--version", action="version", version=f"teiji {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    _describe_commands(parser)
    return parser


def _describe_commands(parser: argparse.ArgumentParser) -> None:
    """Every command's ``--help`` starts with a description: its one-line help when it has
    none of its own (``teiji override list --help``)."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help for choice in action._choices_actions}
        for name, command in action.choices.items():
            if not command.description and helps.get(name):
                text = str(helps[name])
                command.description = text[0].upper() + text[1:] + "."
            _describe_commands(command)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        code: int = args.func(args)
        return code
    except CliError as err:
        print(f"teiji: {err.message}", file=sys.stderr)
        return err.code
    except SettingsError as err:
        print(f"teiji: setting {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("teiji: interrupted", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:
        return EXIT_FAILED
    except Exception as exc:  # the last line of defence: one line, not a traceback
        if os.environ.get("TEIJI_DEBUG"):
            traceback.print_exc()
        print(f"teiji: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
