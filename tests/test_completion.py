"""``teiji completion``: scripts generated from the parser, tried in a real bash."""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess

import pytest

import engine.cli.completion as completion
from engine.cli.main import build_parser, main

BASH = shutil.which("bash")
needs_bash = pytest.mark.skipif(BASH is None, reason="bash is not installed")


def script(capsys: pytest.CaptureFixture[str], shell: str) -> str:
    capsys.readouterr()
    assert main(["completion", shell]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return out


def complete(source: str, line: str) -> list[str]:
    """What bash offers for the last word of ``line`` (a line ending in a space: a new word)."""
    assert BASH is not None
    words = line.split(" ")
    program = (
        f"{source}\n"
        f"COMP_WORDS=({' '.join(shlex.quote(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
        '_teiji; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        [BASH, "--norc", "--noprofile", "-c", program],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert done.stderr == ""
    return sorted(word for word in done.stdout.splitlines() if word)


@needs_bash
def test_bash_completes_commands_options_and_choices(capsys: pytest.CaptureFixture[str]) -> None:
    bash = script(capsys, "bash")
    assert complete(bash, "teiji ov") == ["override"]
    assert complete(bash, "teiji s") == ["savings", "schema", "simulate", "start", "stop"]
    assert complete(bash, "teiji override ") == ["cancel", "extend", "list"]
    assert complete(bash, "teiji override list --a") == ["--all"]
    assert complete(bash, "teiji completion ") == ["bash", "fish", "zsh"]
    assert complete(bash, "teiji simulate --arch ") == ["arm64", "x86_64"]
    # An option's value is not taken for a command: `list` here is the value of --service.
    assert complete(bash, "teiji tick --service list --d") == ["--dry-run"]
    # Where nothing is known, bash falls back to file names (complete -o default).
    assert complete(bash, "teiji validate ") == []
    assert "complete -o default -F _teiji teiji" in bash


@needs_bash
def test_every_option_of_every_command_completes(capsys: pytest.CaptureFixture[str]) -> None:
    bash = script(capsys, "bash")
    commands = list(completion.walk(build_parser()))
    assert {c.name for c in commands} >= {"", "put", "override", "override extend", "completion"}
    for command in commands:
        line = " ".join(["teiji", *command.path, "-"])
        assert complete(bash, line) == sorted(command.options), command.name


def test_a_new_option_is_in_the_next_script(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Generated from the parser when asked: an option added to a command is there at once.
    def grown() -> argparse.ArgumentParser:
        parser = build_parser()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        sub.choices["plan"].add_argument("--brand-new", choices=["yes", "no"], help="new")
        return parser

    monkeypatch.setattr(completion, "build_parser", grown)
    bash = script(capsys, "bash")
    assert "plan) echo '-h --help --at" in bash and "--brand-new'" in bash
    assert "'plan|--brand-new') echo 'yes no' ;;" in bash
    fish = script(capsys, "fish")
    assert "-l brand-new -x -a 'yes no' -d 'new'" in fish


def test_zsh_loads_the_same_functions_through_bashcompinit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    zsh = script(capsys, "zsh")
    bash = script(capsys, "bash")
    assert "bashcompinit" in zsh
    assert bash.split("\n", 2)[2] in zsh


def test_fish_has_a_line_for_every_command_and_option(capsys: pytest.CaptureFixture[str]) -> None:
    fish = script(capsys, "fish")
    lines = fish.splitlines()
    assert "complete -c teiji -f" in lines
    extend = "-n 'test (__teiji_path) = \\'override extend\\''"
    assert any(line.startswith(f"complete -c teiji {extend} -l until -r -F") for line in lines)
    top = "-n 'test (__teiji_path) = \\'\\''"
    assert any(line.startswith(f"complete -c teiji {top} -a override -d ") for line in lines)
    shell = "-n 'test (__teiji_path) = \\'completion\\''"
    assert f"complete -c teiji {shell} -x -a 'bash zsh fish'" in lines


def test_an_unknown_shell_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "tcsh"]) == 2
    assert "invalid choice: 'tcsh'" in capsys.readouterr().err
