"""The ``worldsim`` command line: one subcommand per module, imported only when it runs.

Each subcommand module defines ``add_arguments(parser)`` and ``run(args) -> int | None``. Bad input
anywhere below (a checkpoint, config, data file or argument) raises ValueError, or OSError for a
file; either ends the command here with its message and exit status 2, not a traceback.
"""

import argparse
import importlib
import sys

COMMANDS = {
    "play": ("worldsim.viewer", "play the world model with the keyboard (pygame)"),
    "rollout": ("worldsim.rollout", "generate a rollout headless and write an mp4"),
    "record": ("worldsim.data.record", "record any Gymnasium env into trajectory shards"),
    "train": ("worldsim.train.cli", "train a world model (Diffusion Forcing)"),
    "eval": ("worldsim.evaluation.cli", "evaluate a checkpoint: retrieval, reasoning, recall, next-frame"),
    "bench": ("worldsim.bench", "measure step latency, memory and throughput"),
    "fetch-lpips": ("worldsim.evaluation.lpips", "download LPIPS's AlexNet weights once, so evaluations report LPIPS"),
}


def positive_int(text: str) -> int:
    """argparse type of a count (frames, episodes, steps, jobs): an int >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="worldsim", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = argv[0] if argv and argv[0] in COMMANDS else None
    module = None
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:  # import only the module that runs: `import worldsim.cli` stays light
            module = importlib.import_module(module_name)
            module.add_arguments(p)
    args = parser.parse_args(argv)
    try:
        return int(module.run(args) or 0)
    except (ValueError, OSError) as e:  # CheckpointError is a ValueError
        print(f"worldsim {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
