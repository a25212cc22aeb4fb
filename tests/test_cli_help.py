"""`--help` names the program `fusion-magic` in every subcommand (the installed script's name)."""

from __future__ import annotations

import pytest

from fusion_magic.__main__ import main


@pytest.mark.parametrize(
    ("argv", "usage"),
    [
        ([], "usage: fusion-magic "),
        (["quickstart"], "usage: fusion-magic quickstart "),
        (["local"], "usage: fusion-magic local "),
        (["serve"], "usage: fusion-magic serve "),
        (["mcp"], "usage: fusion-magic mcp "),
    ],
)
def test_every_help_names_one_program(argv, usage, capsys):
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(usage)
    assert "python -m" not in out.split("\n\n")[0]  # the usage line(s)


def test_a_bad_subcommand_is_reported_under_the_same_name(capsys):
    with pytest.raises(SystemExit) as done:
        main(["nonsense"])
    assert done.value.code == 2
    assert "fusion-magic: error:" in capsys.readouterr().err
