"""The `worldsim` command line: bad input in any subcommand ends with its message and status 2."""

import pytest

from worldsim.cli import main


@pytest.mark.parametrize("argv, message", [
    (["train", "--config", "nope.json", "--steps", "1", "--out", "{tmp}/run"], "neither a preset"),
    (["train", "--config", "tiny"], "a new run needs --config, --steps and --out"),
    (["train", "--config", "tiny", "--steps", "1", "--out", "{tmp}/run", "--seed", "-1"], "seed must be >= 0"),
    (["eval", "--task", "retrieval", "--episodes", "0"], "--episodes must be >= 1"),
    (["eval", "--task", "compare", "--steps", "1", "--seed", "-1", "--out", "{tmp}/cmp"], "seed must be >= 0"),
    (["record", "--env", "NoSuchEnv-v0", "--episodes", "1", "--steps", "1", "--out", "{tmp}/shards"], "NoSuchEnv"),
])
def test_bad_input_is_one_line_naming_it_not_a_traceback(argv, message, tmp_path, capsys):
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"worldsim {argv[0]}: error: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # nothing started
