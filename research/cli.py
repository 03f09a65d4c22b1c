"""`research ...` / `python -m research ...`: a thin command line over the library.

Each subcommand parses flags, calls the library and prints; a `ConfigError` becomes one
sentence on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import json
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence

from research import names
from research.errors import ConfigError, Interrupted, RunError, choice

_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}
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
        return _COMMANDS[args.command](args) or 0
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


def _command(name: str):
    def register(fn):
        _COMMANDS[name] = fn
        return fn

    return register


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
    probe.add_argument("--model", default="mlp", help="model family: mlp, cnn, rnn or one a package registered")
    probe.add_argument("--activation", default="relu", help="activation name, e.g. relu, tanh, leaky_relu:0.2")
    probe.add_argument("--depth", type=int, default=20, help="layers (mlp, cnn) or time steps (rnn)")
    probe.add_argument("--width", type=int, default=256, help="units (mlp, rnn) or channels (cnn)")
    probe.add_argument(
        "--alpha", type=float, default=None,
        help="scale multiplier (default: He's rule for rectifiers, else Glorot's, else forward variance)"
    )
    probe.add_argument("--mode", default="fan_in", choices=names.FAN_MODES, help="which fan c / fan divides by")
    probe.add_argument("--distribution", default="normal", choices=names.DISTRIBUTIONS, help="weight distribution")
    probe.add_argument("--sigma-b", type=float, default=0.0, help="bias standard deviation")
    probe.add_argument("--seeds", type=int, default=4, help="independent initialisations (median reported)")
    probe.add_argument("--batch", type=int, default=256, help="Gaussian inputs per seed")
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
            cmd.add_argument("--workers", type=int, default=1, help="local worker processes")
            cmd.add_argument("--trials", type=int, default=None, help="shorthand for --set search.trials=N")
            cmd.add_argument("--no-report", action="store_true", help="skip the report at the end")
            cmd.add_argument("--json", action="store_true", help="progress on stderr, the report's JSON on stdout")
        else:
            cmd.add_argument("--index", type=int, default=0, help="worker index (seeds its sampler)")
            cmd.add_argument("--compilation-cache", default=None, help="persistent XLA cache directory")
            cmd.add_argument(
                "--every-objective", action="store_true",
                help="run every study a sweep of this experiment runs (search.objectives, series), in turn",
            )  # fmt: skip


def _reading_parsers(sub) -> None:
    status = _add(sub, "status", "every study in a storage: trial counts, alpha* and verdicts",
                  "Reads only: a storage that does not exist stops with exit 2.")  # fmt: skip
    _storage_option(status)
    status.add_argument("--json", action="store_true", help="print strict JSON instead of text")

    adv = _add(sub, "advise", "recommended init per layer, from theory and a study's evidence")
    adv.add_argument("--config", required=True, help="experiment file (path.py or path.py:key=value)")
    adv.add_argument("--profile", default="quick", choices=names.PROFILES, help="quick or paper")
    _storage_option(adv)
    adv.add_argument("--json", action="store_true", help="print strict JSON instead of a table")

    lsuv = _add(sub, "lsuv", "LSUV's data-dependent per-layer scales against theory")
    lsuv.add_argument("--config", required=True, help="experiment file (path.py or path.py:key=value)")
    lsuv.add_argument("--profile", default="quick", choices=names.PROFILES, help="quick or paper")
    lsuv.add_argument("--batch", type=int, default=512, help="training examples LSUV calibrates on")

    rep = _add(sub, "report", "alpha* tables (Markdown, LaTeX, JSON) and figures for every study",
               "Reads only and trains nothing; PDF (TrueType fonts), SVG and PNG figures.")  # fmt: skip
    _storage_option(rep)
    rep.add_argument("--out", default="runs/report", help="output folder")
    rep.add_argument("--no-figures", action="store_true", help="tables only")
    rep.add_argument("--size", default="double", choices=("single", "double"), help="figure width: paper column")
    rep.add_argument("--json", action="store_true", help="print report.json (strict JSON) instead of Markdown")
    rep.add_argument(
        "--artifacts",
        default=None,
        help="artifact folder the dashboard shows figures from (default: artifacts/ beside --out)",
    )

    export = _add(sub, "export", "every trial x seed (and the curves) as CSV, Parquet or JSONL",
                  "One row per trial and seed; curves in long format in a second file.")  # fmt: skip
    _storage_option(export)
    export.add_argument("--out", default="runs/export", help="output folder")
    export.add_argument("--format", default="csv", choices=("csv", "parquet", "jsonl"), help="file format")

    dash = _add(sub, "dashboard", "optuna-dashboard for a storage, on 127.0.0.1 by default",
                "Shows each study's note (alpha*, interval, verdicts) and its figures as artifacts.")  # fmt: skip
    _storage_option(dash)
    dash.add_argument("--host", default="127.0.0.1", help="address to listen on")
    dash.add_argument("--port", type=int, default=8080, help="port to listen on")
    dash.add_argument("--artifacts", default="runs/artifacts", help="artifact folder the report published figures to")
    dash.add_argument(
        "--expose", action="store_true", help="allow a non-loopback --host (anyone who reaches it can edit)"
    )


def _print_json(value) -> None:
    """Strict JSON on stdout: NaN and infinities become null, never bare NaN/Infinity tokens."""
    from research.coordination import jsonable

    print(json.dumps(jsonable(value), indent=2, allow_nan=False, default=str))


@_command("status")
def _status(args: argparse.Namespace) -> int:
    import optuna

    from research import coordination, extrapolate, render, storage, studies, verdicts

    url = storage.resolve(args.storage)
    backend = storage.open_existing(url)
    names = optuna.get_all_study_names(storage=backend)
    if not names and not args.json:
        print(f"no studies in {storage.redact(url)}")
    analyses, rows = [], []
    for name in names:
        study = optuna.load_study(study_name=name, storage=backend)
        record = studies.load(study)
        judged = verdicts.analyse_all(record) if record is not None else None
        counts = coordination.counts(study)
        if args.json:
            rows.append({"study": name, "counts": counts,
                         "objectives": [render.row(name, a) for a in judged or []]})  # fmt: skip
        else:
            print(render.summary(name, counts, judged))
        analyses += (judged or [])[:1]
    series = extrapolate.series(analyses)
    if args.json:
        _print_json({"storage": storage.redact(url), "studies": rows,
                     "series": [dataclasses.asdict(e) for e in series]})  # fmt: skip
        return 0
    for e in series:
        print(render.series_summary(e))
    return 0


@_command("advise")
def _advise(args: argparse.Namespace) -> int:
    from research import advise, experiment, storage, studies

    cfg = experiment.load(args.config, args.profile)
    record = None
    url = storage.resolve(args.storage, cfg.search.runs_dir)
    if "://" in url or os.path.exists(url):
        found = studies.find(cfg, storage.open_existing(url))
        record = studies.load(found) if found is not None else None
    advice = advise.advise(cfg, record)
    if args.json:
        _print_json(advice)
        return 0
    print(f"{cfg.name}: {cfg.model.name}, {advice['activation']}, mode {advice['mode']}")
    print(f"closest preset: {advice['closest_preset']}; edge of chaos: {_fmt(advice['theory']['edge_of_chaos'])}")
    print(
        f"  ({advice['edge_of_chaos_note']}); depth scale at the forward rule: {_fmt(advice['depth_scale_at_forward'])}"
    )
    if advice["evidence"] is None:
        print("no usable study for this experiment: recommendations are theory's alone")
    rows = [
        [r["layer"], str(r["shape"]), r["mode"], f"{r['alpha']:.3g}", f"{r['std']:.4g}", r["source"]]
        for r in advice["layers"]
    ]
    print(_markdown(["layer", "kernel", "fan mode", "alpha", "std", "from"], rows))
    return 0


@_command("lsuv")
def _lsuv(args: argparse.Namespace) -> int:
    import jax
    import numpy as np

    from research import data, experiment, lsuv

    cfg = experiment.load(args.config, args.profile)
    dataset = data.load(cfg.data)
    rows = lsuv.compare(cfg.model, dataset.x_train[: args.batch], jax.random.key(0))
    print(f"LSUV on {cfg.name} ({cfg.model.activation}): alpha = Var(W) * fan_in per layer")
    table = [[str(i), f"{a:.3g}", "1 (standardised inputs)" if i == 1 else f"{t:.3g}"] for i, a, t in rows]
    print(_markdown(["layer", "LSUV alpha", "theory 1/E[phi^2]"], table))
    later = np.array([a for _, a, _ in rows[1:]])
    print(f"layers 2-{len(rows)}: median {np.median(later):.3g}, range [{later.min():.3g}, {later.max():.3g}];"
          f" theory {rows[-1][2]:.3g}")  # fmt: skip
    return 0


@_command("report")
def _report(args: argparse.Namespace) -> int:
    from research import devices, report, storage

    devices.use_cpu_cores()
    url = storage.resolve(args.storage)
    artifacts = args.artifacts or os.path.join(os.path.dirname(os.path.abspath(args.out)), "artifacts")
    path = report.write(url, args.out, figures=not args.no_figures, size=args.size, artifacts=artifacts)
    if args.json:
        _print_json(json.loads((path.parent / "report.json").read_text()))
        return 0
    print(path.read_text())
    print(f"written: {path.parent}/report.{{md,tex,json}} and {path.parent}/figures/ (PDF, SVG, PNG)")
    return 0


@_command("export")
def _export(args: argparse.Namespace) -> int:
    from research import export, storage

    written = export.write(storage.resolve(args.storage), args.out, args.format)
    for path, rows in written.items():
        print(f"{path}: {rows} rows")
    return 0


@_command("dashboard")
def _dashboard(args: argparse.Namespace) -> int:
    import ipaddress

    from research import storage

    loopback = args.host == "localhost" or _is_loopback(args.host, ipaddress)
    if not loopback and not args.expose:
        raise ConfigError(
            f"--host {args.host} listens beyond this machine; add --expose to allow it, or use 127.0.0.1."
        )
    url = storage.resolve(args.storage)
    backend = storage.open_existing(url)
    import optuna_dashboard

    from research import dashboard

    print(f"optuna-dashboard for {storage.redact(url)} at http://{args.host}:{args.port}/dashboard", flush=True)
    store = dashboard.artifact_store(args.artifacts) if os.path.isdir(args.artifacts) else None  # none published
    optuna_dashboard.run_server(backend, host=args.host, port=args.port, artifact_store=store)
    return 0


def _is_loopback(host: str, ipaddress) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@_command("sweep")
def _sweep(args: argparse.Namespace) -> int:
    from research import data, devices, experiment, report, storage, sweep

    devices.host_only()  # the workers train on the accelerator; this process analyses and draws
    if args.workers < 1:
        raise ConfigError(f"--workers must be an integer >= 1; got {args.workers}.")
    if args.trials is not None and args.trials < 1:
        raise ConfigError(f"--trials must be an integer >= 1; got {args.trials}.")
    overrides = _overrides(args) + ([f"search.trials={args.trials}"] if args.trials is not None else [])
    configs = [(path, experiment.load(path, args.profile, overrides)) for path in args.config]  # all checked first
    for _, cfg in configs:
        data.check_available(cfg.data)  # before any study or worker exists
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        with sweep.closing_in_background() as closing:
            kw = {"closing": closing, "figures": not args.no_report}
            studies = [s for _, cfg in configs for s in sweep.run_all(cfg, args.storage, args.workers, **kw)]
        if not args.no_report:
            runs_dir = configs[0][1].search.runs_dir
            path = report.write(storage.resolve(args.storage, runs_dir), report.folder(runs_dir),
                                artifacts=os.path.join(runs_dir, "artifacts"))  # fmt: skip
            print("\n" + path.read_text())
            print(f"report: {path} (figures in {path.parent / 'figures'})")
    if args.json:
        _print_json(json.loads((path.parent / "report.json").read_text()) if not args.no_report else
                    {"studies": [s.study_name for s in studies]})  # fmt: skip
    return 0 if studies else 1


def _overrides(args: argparse.Namespace) -> list[str]:
    """--set overrides, and --on-config-change as the override it stands for."""
    extra = [f"search.on_config_change='{args.on_config_change}'"] if args.on_config_change else []
    return [*args.set, *extra]


@_command("worker")
def _worker(args: argparse.Namespace) -> int:
    from research import devices, experiment, storage, studies
    from research import worker as workers

    if len(args.config) != 1:
        raise ConfigError("a worker takes exactly one --config.")
    devices.use_cpu_cores()
    if args.compilation_cache:
        devices.enable_compilation_cache(args.compilation_cache)
    cfg = experiment.load(args.config[0], args.profile, _overrides(args))
    url = storage.resolve(args.storage, cfg.search.runs_dir)
    stop, received = threading.Event(), []

    def on_signal(signum, frame) -> None:  # preemption: finish the chunk, checkpoint, release
        received.append(signum)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):  # SIGUSR1: sbatch --signal=USR1@seconds
        signal.signal(sig, on_signal)
    for member in studies.expand(cfg) if args.every_objective else [cfg]:
        worker = workers.Worker(member, url, worker_index=args.index, echo=lambda line: print(line, flush=True),
                                stop=stop)  # fmt: skip
        told = worker.run()
        print(f"[{worker.id}] {worker.name} done: told {told} trials", flush=True)
        if received:
            raise Interrupted(received[0])
    return 0


@_command("theory")
def _theory(args: argparse.Namespace) -> int:
    from research import activations, theory

    chosen = args.activation or [n for n in activations.names() if n != "leaky_relu"] + [
        "leaky_relu:0.01",
        "leaky_relu:0.2",
    ]
    sigma_b = theory.validate_sigma_b(args.sigma_b)
    rows = {name: theory.predict(name, sigma_b) for name in chosen}
    if args.json:
        _print_json({n: {p.theory: {"alpha": p.alpha, "note": p.note} for p in preds} for n, preds in rows.items()})
        return 0
    print(f"Predicted optimal alpha (Var(W) = alpha / fan, sigma_b {sigma_b:g}, square layers; n/a: the rule's")
    print("derivation does not cover the activation; docs/theory.md derives each)\n")
    header = ["activation", *theory.THEORIES, "xi at forward"]
    table = []
    for name, preds in rows.items():
        by = {p.theory: p for p in preds}
        xi = theory.depth_scale(name, by["forward"].alpha, sigma_b)
        table.append([name, *(_fmt(by[t].alpha) if by[t].alpha else "n/a" for t in theory.THEORIES), _fmt(xi)])
    print(_markdown(header, table))
    notes = {n: p.note for n, preds in rows.items() for p in preds if p.theory == "edge_of_chaos" and p.alpha is None}
    for name, note in notes.items():
        print(f"\n{name}: edge_of_chaos: {note}")
    return 0


@_command("probe")
def _probe(args: argparse.Namespace) -> int:
    from research import init as initlib
    from research import models, predictions, probes

    if args.model not in models.FAMILIES:
        raise choice("--model", args.model, tuple(models.FAMILIES))
    init = {"scale": 1.0, "mode": args.mode, "distribution": args.distribution}
    cfg = models.probe_config(args.model, args.activation, args.depth, args.width, init, args.sigma_b)
    alpha = args.alpha if args.alpha is not None else predictions.default_alpha(cfg)
    lo, hi = initlib.ALPHA_LIMITS
    if not lo <= alpha <= hi:
        raise ConfigError(f"--alpha must be a number in [{lo:g}, {hi:g}] (float32 training); got {args.alpha!r}.")
    if args.seeds < 1 or args.batch < 1:
        raise ConfigError(f"--seeds and --batch must be integers >= 1; got {args.seeds} and {args.batch}.")
    per_layer, ratio = probes.summary(cfg, alpha, args.seeds, args.batch, length=args.depth)
    if args.json:
        per_layer = {f: v.tolist() for f, v in per_layer.items()}
        _print_json({"alpha": alpha, "per_layer": per_layer, "log_ratio_per_layer": ratio})
        return 0
    unit = models.family(cfg).depth_unit
    print(
        f"{cfg.name} {cfg.activation}, {args.depth} {unit}s x {args.width}, alpha {alpha:g} on {args.mode}"
        f" ({args.distribution}); median of {args.seeds} seeds\n"
    )
    rows = [[str(i + 1), *(f"{per_layer[f][i]:.4g}" for f in per_layer)] for i in range(len(per_layer["forward"]))]
    print(_markdown([unit, "forward E[h^2]", "backward E[g^2]", "jacobian gain"], rows))
    print(f"\nfitted log-ratio per {unit} (0 = preserved): " + ", ".join(f"{f} {v:+.4f}" for f, v in ratio.items()))
    return 0


def _fmt(value: float | None) -> str:
    if value is None:
        return "none"
    return "inf" if math.isinf(value) else f"{value:.4g}"


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])
