"""The `worldsim` command line: bad input in any subcommand ends with its message and status 2."""

import pytest

from worldsim.cli import main


@pytest.mark.parametrize("argv, message", [
    (["train", "--config", "nope.json", "--steps", "1", "--out", "{tmp}/run"], "neither a preset"),
    (["train", "--config", "tiny"], "a new run needs --config, --steps and --out"),
    (["train", "--config", "tiny", "--steps", "1", "--out", "{tmp}/run", "--seed", "-1"], "seed must be >= 0"),
    (["eval", "--task", "compare", "--steps", "1", "--seed", "-1", "--out", "{tmp}/cmp"], "seed must be >= 0"),
    (["record", "--env", "NoSuchEnv-v0", "--episodes", "1", "--steps", "1", "--out", "{tmp}/shards"], "NoSuchEnv"),
])
def test_bad_input_is_one_line_naming_it_not_a_traceback(argv, message, tmp_path, capsys):
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"worldsim {argv[0]}: error: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # nothing started


@pytest.mark.parametrize("argv", [
    ["eval", "--task", "retrieval", "--episodes", "0"],
    ["eval", "--task", "retrieval", "--generate", "0"],  # was taken for "the default"
    ["eval", "--task", "retrieval", "--context", "-5"],
    ["eval", "--task", "retrieval", "--batch-size", "0"],
    ["eval", "--task", "compare", "--steps", "1", "--jobs", "0"],
    ["bench", "--frames", "0"],  # was taken for "the default"
])
def test_counts_below_one_are_refused_before_anything_runs(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert f"argument {argv[-2]}: must be >= 1, got {argv[-1]}" in capsys.readouterr().err
