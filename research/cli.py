"""`research ...` / `python -m research ...`: a thin command line over the library.

Each subcommand parses flags, calls the library and prints; a `ConfigError` becomes one
sentence on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import errno
import sys
from collections.abc import Sequence

from research import names
from research.commands import COMMANDS
from research.errors import ConfigError, Interrupted, RunError

_SUBPARSERS: dict[str, argparse.ArgumentParser] = {}
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT, errno.EPERM}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = _parser()
    try:
        args, extra = parser.parse_known_args(config_flags(sys.argv[1:] if argv is None else list(argv)))
        if extra:  # named after the subcommand, as its other errors are
            _SUBPARSERS.get(getattr(args, "command", None), parser).error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as done:  # --help, --version, or a bad flag (one sentence, already printed)
        return done.code if isinstance(done.code, int) else 2
    except ConfigError as err:
        print(f"research: {err}", file=sys.stderr)
        return 2
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        from research import devices  # imports JAX, which the parsing above does not need

        devices.check_xla_flags()
        return COMMANDS[args.command](args) or 0
    except KeyboardInterrupt:  # SIGINT outside a sweep's own handling (e.g. while its report is written)
        print(f"research {args.command}: stopped by SIGINT; what was already recorded is intact.", file=sys.stderr)
        return 130
    except Interrupted as err:
        print(f"research {args.command}: {err}; checkpointed trials resume when you run it again.", file=sys.stderr)
        return 128 + err.signum
    except (ConfigError, RunError) as err:
        print(f"research {args.command}: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.errno not in _STORAGE_ERRNOS:
            raise
        where = f" ({err.filename})" if err.filename else ""
        print(
            f"research {args.command}: a write failed: {err.strerror}{where}; what was already recorded is intact,"
            " free space or point --storage elsewhere and run again to continue.",
            file=sys.stderr,
        )
        return 2


def config_flags(argv: list[str]) -> list[str]:
    """`--config.a.b=c` and `--config.a.b c` (the ml_collections habit) as `--set a.b=c`."""
    out, i = [], 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--config.") and len(arg) > len("--config."):
            key, sep, value = arg[len("--config.") :].partition("=")
            if not sep:
                if i + 1 >= len(argv):
                    raise ConfigError(f"{arg} needs a value: {arg}=VALUE or {arg} VALUE.")
                i, value = i + 1, argv[i + 1]
            out += ["--set", f"{key}={value}"]
        else:
            out.append(arg)
        i += 1
    return out


class _Parser(argparse.ArgumentParser):
    """argparse with its errors as one sentence naming the flag and what it accepts (exit 2)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message}.\n")


def _int_in(low: int, high: int):
    """An argparse type: an integer in [low, high], else one sentence saying what is accepted."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be an integer from {low} to {high}; got {text!r}")
        return value

    return parse


_port = _int_in(1, 65535)
_count = _int_in(1, 1_000_000)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="research",
        description="Is Xavier/He really the optimal init scale? Theory, probes at initialisation and trained"
        " sweeps of Var(W) = alpha * c / fan, with three-way verdicts (docs/theory.md).",
    )
    parser.add_argument("--version", action=_Version, help="the code version (commit) and its key packages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _theory_and_probe_parsers(sub)
    _sweep_and_worker_parsers(sub)
    _reading_parsers(sub)
    return parser


class _Version(argparse.Action):
    """--version: printed as one unwrapped line, computed only when asked for."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(_version())
        parser.exit(0)


def _version() -> str:
    import importlib.metadata

    from research import provenance

    versions = ", ".join(f"{p} {importlib.metadata.version(p)}" for p in ("jax", "flax", "optax", "optuna"))
    return f"research {provenance.code_version()} ({versions})"


def _add(sub, name: str, text: str, description: str = "") -> argparse.ArgumentParser:
    """A subcommand with its one-line help and a description (the help, then `description`)."""
    _SUBPARSERS[name] = sub.add_parser(
        name, help=text, description=f"{text[0].upper()}{text[1:]}. {description}".strip()
    )
    return _SUBPARSERS[name]


def _storage_option(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--storage",
        default=None,
        help="journal file path, sqlite:///FILE or postgresql://... (default: $RESEARCH_STORAGE, $OPTUNA_STORAGE,"
        " else runs/studies.journal; a URL with a password belongs in the environment, not here)",
    )


def _theory_and_probe_parsers(sub) -> None:
    theory = _add(sub, "theory", "every theory's predicted optimal alpha",
                  "Closed forms and mean-field fixed points per activation, derived in docs/theory.md.")  # fmt: skip
    theory.add_argument("--activation", action="append", help="NAME or NAME:PARAM (repeatable); default: all")
    theory.add_argument("--sigma-b", type=float, default=0.0, help="bias std for the edge of chaos")
    theory.add_argument("--json", action="store_true", help="print strict JSON instead of a table")

    probe = _add(sub, "probe", "per-layer signal propagation at initialisation",
                 "Forward E[h^2], backward E[g^2] and Jacobian gain per layer of a square model.")  # fmt: skip
    probe.add_argument("--model", default="mlp", help="model family: mlp, cnn, rnn, resmlp or one a package registered")
    probe.add_argument("--activation", default="relu", help="activation name, e.g. relu, tanh, leaky_relu:0.2")
    probe.add_argument("--depth", type=_count, default=20, help="layers (mlp, cnn) or time steps (rnn)")
    probe.add_argument("--width", type=_count, default=256, help="units (mlp, rnn) or channels (cnn)")
    probe.add_argument(
        "--alpha", type=float, default=None,
        help="scale multiplier (default: He's rule for rectifiers, else Glorot's, else forward variance)",
    )  # fmt: skip
    probe.add_argument("--mode", default="fan_in", choices=names.FAN_MODES, help="which fan c / fan divides by")
    probe.add_argument("--distribution", default="normal", choices=names.DISTRIBUTIONS, help="weight distribution")
    probe.add_argument("--sigma-b", type=float, default=0.0, help="bias standard deviation")
    probe.add_argument("--seeds", type=_count, default=4, help="independent initialisations (median reported)")
    probe.add_argument("--batch", type=_count, default=256, help="Gaussian inputs per seed")
    probe.add_argument("--json", action="store_true", help="print strict JSON instead of a table")


def _sweep_and_worker_parsers(sub) -> None:
    for name, text, description in (
        ("sweep", "run a sweep: W local workers, one progress bar",
         "One study per objective the experiment lists, each to its trial budget, then the report."),
        ("worker", "one sweep worker (a cluster task runs this)",
         "Asks, trains and tells until the study holds its budget; SIGTERM/SIGINT checkpoint and release"
         " its trials for immediate retry."),
    ):  # fmt: skip
        cmd = _add(sub, name, text, description)
        cmd.add_argument(
            "--config", action="append", required=True, help="experiment file, path.py or path.py:key=value"
            + (" (repeatable)" if name == "sweep" else "")
        )  # fmt: skip
        cmd.add_argument("--profile", default="quick", choices=names.PROFILES, help="quick (laptop) or paper (cluster)")
        _storage_option(cmd)
        cmd.add_argument(
            "--set", action="append", default=[], metavar="KEY=VALUE",
            help="config override, e.g. search.trials=40 (also written --config.search.trials=40)",
        )  # fmt: skip
        cmd.add_argument(
            "--on-config-change", choices=names.CONFIG_CHANGES, default=None,
            help="when a study of this name was made with another config: stop (default) naming the changed"
            " keys, or start a new study beside it",
        )  # fmt: skip
        if name == "sweep":
            cmd.add_argument("--workers", type=_int_in(1, 256), default=1, help="local worker processes")
            cmd.add_argument("--trials", type=_count, default=None, help="shorthand for --set search.trials=N")
            cmd.add_argument("--no-report", action="store_true", help="skip the report at the end")
            cmd.add_argument("--json", action="store_true", help="progress on stderr, the report's JSON on stdout")
        else:
            cmd.add_argument("--index", type=_int_in(0, 1_000_000), default=0, help="worker index (seeds its sampler)")
            cmd.add_argument("--compilation-cache", default=None, help="persistent XLA cache directory")
            cmd.add_argument(
                "--every-objective", action="store_true",
                help="run every study a sweep of this experiment runs (search.objectives, series), in turn",
            )  # fmt: skip


def _report_parser(sub) -> None:
    rep = _add(sub, "report", "alpha* tables (Markdown, LaTeX, JSON) and figures for every study",
               "Reads only and trains nothing; PDF (TrueType fonts), SVG and PNG figures.")  # fmt: skip
    _storage_option(rep)
    rep.add_argument("--out", default="runs/report", help="output folder")
    rep.add_argument("--no-figures", action="store_true", help="tables only")
    rep.add_argument("--size", default="double", choices=("single", "double"), help="figure width: paper column")
    rep.add_argument("--json", action="store_true", help="print report.json (strict JSON) instead of Markdown")
    rep.add_argument(
        "--tex-study", action="append", default=None, metavar="NAME", help="report.tex: only these studies"
    )
    rep.add_argument("--tex-columns", default=None, metavar="A,B", help="report.tex: columns, of prediction, alpha,"
                     " relative_error, verdict, regret")  # fmt: skip
    rep.add_argument("--tex-width", default="text", choices=("text", "column"),
                     help="report.tex: tables as wide as the page (table*) or one column (table)")  # fmt: skip
    rep.add_argument(
        "--publish", action="store_true",
        help="also publish each study's note and figures to the dashboard (writes the storage; sweeps do it)",
    )  # fmt: skip
    rep.add_argument(
        "--artifacts", default=None,
        help="with --publish: the artifact folder (default: artifacts/ beside a journal or SQLite file, else runs/)",
    )  # fmt: skip


def _reading_parsers(sub) -> None:
    status = _add(sub, "status", "every study in a storage: trial counts, alpha* and verdicts",
                  "Reads only: a storage that does not exist stops with exit 2.")  # fmt: skip
    _storage_option(status)
    status.add_argument("--json", action="store_true", help="print strict JSON instead of text")

    adv = _add(sub, "advise", "recommended init per layer, from theory and a study's evidence")
    adv.add_argument("--config", required=True, help="experiment file (path.py or path.py:key=value)")
    adv.add_argument("--profile", default="quick", choices=names.PROFILES, help="quick or paper")
    adv.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override, as for sweep")
    _storage_option(adv)
    adv.add_argument("--json", action="store_true", help="print strict JSON instead of a table")

    lsuv = _add(sub, "lsuv", "LSUV's data-dependent per-layer scales against theory")
    lsuv.add_argument("--config", required=True, help="experiment file (path.py or path.py:key=value)")
    lsuv.add_argument("--profile", default="quick", choices=names.PROFILES, help="quick or paper")
    lsuv.add_argument("--batch", type=_count, default=512, help="training examples LSUV calibrates on")

    _report_parser(sub)

    export = _add(sub, "export", "every trial x seed (and the curves) as CSV, Parquet or JSONL",
                  "One row per trial and seed; curves in long format in a second file.")  # fmt: skip
    _storage_option(export)
    export.add_argument("--out", default="runs/export", help="output folder")
    export.add_argument("--format", default="csv", choices=("csv", "parquet", "jsonl"), help="file format")

    dash = _add(sub, "dashboard", "optuna-dashboard for a storage, on 127.0.0.1 by default",
                "Shows each study's note (alpha*, interval, verdicts) and its figures as artifacts.")  # fmt: skip
    _storage_option(dash)
    dash.add_argument("--host", default="127.0.0.1", help="address to listen on")
    dash.add_argument("--port", type=_port, default=8080, help="port to listen on (1-65535)")
    dash.add_argument("--writable", action="store_true", help="allow edits (notes, deleting studies); else read-only")
    dash.add_argument(
        "--allow-host", action="append", default=[], metavar="NAME",
        help="a host name browsers may reach it by besides loopback and --host (repeatable)",
    )  # fmt: skip
    dash.add_argument("--artifacts", default=None, help="artifact folder (default: where the sweep published them)")
    dash.add_argument(
        "--expose", action="store_true", help="allow a non-loopback --host (anyone who reaches it can read it)"
    )
