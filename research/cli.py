"""`research ...` / `python -m research ...`: a thin command line over the library.

Each subcommand parses flags, calls the library and prints; a `ConfigError` becomes one
sentence on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence

from research.errors import ConfigError, Interrupted, RunError, choice

_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT, errno.EPERM}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = _parser()
    args = parser.parse_args(argv)
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


def _command(name: str):
    def register(fn):
        _COMMANDS[name] = fn
        return fn

    return register


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="research", description="Is Xavier/He really the optimal init scale?")
    sub = parser.add_subparsers(dest="command")
    _theory_and_probe_parsers(sub)
    _sweep_and_worker_parsers(sub)
    _reading_parsers(sub)
    return parser


def _theory_and_probe_parsers(sub) -> None:
    theory = sub.add_parser("theory", help="every theory's predicted optimal alpha")
    theory.add_argument("--activation", action="append", help="NAME or NAME:PARAM (repeatable); default: all")
    theory.add_argument("--sigma-b", type=float, default=0.0, help="bias std for the edge of chaos")
    theory.add_argument("--json", action="store_true", help="print JSON instead of a table")

    probe = sub.add_parser("probe", help="per-layer signal propagation at initialisation")
    probe.add_argument("--model", default="mlp", help="mlp | cnn | rnn")
    probe.add_argument("--activation", default="relu")
    probe.add_argument("--depth", type=int, default=20, help="layers (mlp, cnn) or time steps (rnn)")
    probe.add_argument("--width", type=int, default=256, help="units (mlp, rnn) or channels (cnn)")
    probe.add_argument(
        "--alpha", type=float, default=None, help="scale multiplier (default: the He/Xavier value of the mode)"
    )
    probe.add_argument("--mode", default="fan_in", help="fan_in | fan_out | fan_avg | fixed")
    probe.add_argument("--distribution", default="normal", help="normal | truncated_normal | uniform | orthogonal")
    probe.add_argument("--sigma-b", type=float, default=0.0)
    probe.add_argument("--seeds", type=int, default=4)
    probe.add_argument("--batch", type=int, default=256)
    probe.add_argument("--json", action="store_true")


def _sweep_and_worker_parsers(sub) -> None:
    for name, text in (("sweep", "run a sweep: W local workers, one progress bar"), ("worker", "one sweep worker")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--config", action="append", required=True, help="experiment file (repeatable for sweep)")
        cmd.add_argument("--profile", default="quick", help="quick | paper")
        cmd.add_argument(
            "--storage",
            default=None,
            help="journal file path, sqlite:///FILE or postgresql://... (default: $RESEARCH_STORAGE)",
        )
        cmd.add_argument(
            "--set", action="append", default=[], metavar="KEY=VALUE", help="config override, e.g. search.trials=40"
        )
        if name == "sweep":
            cmd.add_argument("--workers", type=int, default=1)
            cmd.add_argument("--trials", type=int, default=None, help="shorthand for --set search.trials=N")
            cmd.add_argument("--no-report", action="store_true", help="skip the report at the end")
        else:
            cmd.add_argument("--index", type=int, default=0, help="worker index (seeds its sampler)")
            cmd.add_argument("--compilation-cache", default=None, help="persistent XLA cache directory")


def _reading_parsers(sub) -> None:
    status = sub.add_parser("status", help="every study in a storage: trial counts, best alpha, theory")
    status.add_argument(
        "--storage", default=None, help="default: $RESEARCH_STORAGE, $OPTUNA_STORAGE, else runs/studies.journal"
    )

    adv = sub.add_parser("advise", help="recommended init per layer, from theory and a study's evidence")
    adv.add_argument("--config", required=True, help="experiment file (path.py or path.py:key=value)")
    adv.add_argument("--profile", default="quick")
    adv.add_argument("--storage", default=None, help="where to look for the experiment's study")
    adv.add_argument("--json", action="store_true")

    lsuv = sub.add_parser("lsuv", help="LSUV's data-dependent per-layer scales against theory")
    lsuv.add_argument("--config", required=True)
    lsuv.add_argument("--profile", default="quick")
    lsuv.add_argument("--batch", type=int, default=512)

    rep = sub.add_parser("report", help="alpha* tables (Markdown, LaTeX, JSON) and figures for every study")
    rep.add_argument(
        "--storage", default=None, help="default: $RESEARCH_STORAGE, $OPTUNA_STORAGE, else runs/studies.journal"
    )
    rep.add_argument("--out", default="runs/report")
    rep.add_argument("--no-figures", action="store_true")

    dash = sub.add_parser("dashboard", help="optuna-dashboard for a storage, on 127.0.0.1 by default")
    dash.add_argument(
        "--storage", default=None, help="default: $RESEARCH_STORAGE, $OPTUNA_STORAGE, else runs/studies.journal"
    )
    dash.add_argument("--host", default="127.0.0.1")
    dash.add_argument("--port", type=int, default=8080)
    dash.add_argument(
        "--expose", action="store_true", help="allow a non-loopback --host (anyone who reaches it can edit)"
    )


@_command("status")
def _status(args: argparse.Namespace) -> int:
    import optuna

    from research import extrapolate, storage, sweep, verdicts

    url = storage.resolve(args.storage)
    backend = storage.open_storage(url)
    names = optuna.get_all_study_names(storage=backend)
    if not names:
        print(f"no studies in {storage.redact(url)}")
    analyses = []
    for name in names:
        study = optuna.load_study(study_name=name, storage=backend)
        judged = verdicts.analyse_all(study) if "config" in study.user_attrs else []
        print(sweep.summary(study, analyses=judged))
        analyses += judged[:1]
    for series in extrapolate.series(analyses):
        print(sweep.series_summary(series))
    return 0


@_command("advise")
def _advise(args: argparse.Namespace) -> int:
    import optuna

    from research import advise, experiment, search, storage

    cfg = experiment.load(args.config, args.profile)
    study = None
    url = storage.resolve(args.storage, cfg.search.runs_dir)
    if "://" in url or os.path.exists(url):
        backend, name = storage.open_storage(url), search.study_name(cfg)
        if name in optuna.get_all_study_names(storage=backend):
            study = optuna.load_study(study_name=name, storage=backend)
    advice = advise.advise(cfg, study)
    if args.json:
        print(json.dumps(advice, indent=2, default=str))
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
    path = report.write(storage.resolve(args.storage), args.out, figures=not args.no_figures)
    print(path.read_text())
    print(f"written: {path.parent}/report.{{md,tex,json}} and {path.parent}/figures/")
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
    backend = storage.open_storage(url)
    import optuna_dashboard

    print(f"optuna-dashboard for {storage.redact(url)} at http://{args.host}:{args.port}/dashboard", flush=True)
    optuna_dashboard.run_server(backend, host=args.host, port=args.port)
    return 0


def _is_loopback(host: str, ipaddress) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@_command("sweep")
def _sweep(args: argparse.Namespace) -> int:
    from research import data, experiment, report, storage, sweep

    if args.workers < 1:
        raise ConfigError(f"--workers must be an integer >= 1; got {args.workers}.")
    if args.trials is not None and args.trials < 1:
        raise ConfigError(f"--trials must be an integer >= 1; got {args.trials}.")
    overrides = list(args.set) + ([f"search.trials={args.trials}"] if args.trials is not None else [])
    configs = [(path, experiment.load(path, args.profile, overrides)) for path in args.config]  # all checked first
    for _, cfg in configs:
        data.check_available(cfg.data)  # before any study or worker exists
    studies = [s for path, cfg in configs for s in sweep.run_all(cfg, path, overrides, args.storage, args.workers)]
    if not args.no_report:
        runs_dir = configs[0][1].search.runs_dir
        path = report.write(storage.resolve(args.storage, runs_dir), os.path.join(runs_dir, "report"))
        print("\n" + path.read_text())
        print(f"report: {path} (figures in {path.parent / 'figures'})")
    return 0 if studies else 1


@_command("worker")
def _worker(args: argparse.Namespace) -> int:
    from research import devices, experiment, search, storage

    if len(args.config) != 1:
        raise ConfigError("a worker takes exactly one --config.")
    devices.use_cpu_cores()
    if args.compilation_cache:
        devices.enable_compilation_cache(args.compilation_cache)
    cfg = experiment.load(args.config[0], args.profile, args.set)
    url = storage.resolve(args.storage, cfg.search.runs_dir)
    stop, received = threading.Event(), []

    def on_signal(signum, frame) -> None:  # preemption: finish the chunk, checkpoint, release
        received.append(signum)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    worker = search.Worker(cfg, url, worker_index=args.index, echo=lambda line: print(line, flush=True), stop=stop)
    told = worker.run()
    print(f"[{worker.id}] done: told {told} trials", flush=True)
    if received:
        raise Interrupted(received[0])
    return 0


@_command("theory")
def _theory(args: argparse.Namespace) -> int:
    from research import activations, theory

    names = args.activation or [n for n in activations.NAMES if n != "leaky_relu"] + [
        "leaky_relu:0.01",
        "leaky_relu:0.2",
    ]
    sigma_b = theory.validate_sigma_b(args.sigma_b)
    rows = {name: theory.predict(name, sigma_b) for name in names}
    if args.json:
        print(
            json.dumps(
                {n: {p.theory: {"alpha": p.alpha, "note": p.note} for p in preds} for n, preds in rows.items()},
                indent=2,
            )
        )
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
    from research import models, probes

    if args.model not in models.MODELS:
        raise choice("--model", args.model, models.MODELS)
    init = {"scale": 1.0, "mode": args.mode, "distribution": args.distribution}
    cfg = models.probe_config(args.model, args.activation, args.depth, args.width, init, args.sigma_b)
    alpha = args.alpha if args.alpha is not None else (2.0 if cfg.activation.startswith("relu") else 1.0)
    lo, hi = initlib.ALPHA_LIMITS
    if not lo <= alpha <= hi:
        raise ConfigError(f"--alpha must be a number in [{lo:g}, {hi:g}] (float32 training); got {args.alpha!r}.")
    if args.seeds < 1 or args.batch < 1:
        raise ConfigError(f"--seeds and --batch must be integers >= 1; got {args.seeds} and {args.batch}.")
    per_layer, ratio = probes.summary(cfg, alpha, args.seeds, args.batch, length=args.depth)
    if args.json:
        per_layer = {f: v.tolist() for f, v in per_layer.items()}
        print(json.dumps({"alpha": alpha, "per_layer": per_layer, "log_ratio_per_layer": ratio}))
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
