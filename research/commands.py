"""What each `research` subcommand does: call the library and print (cli.py parses the flags).

Every handler imports what it needs when it runs, so `research --help` loads no JAX.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import signal
import sys
import threading
from collections.abc import Callable

from research.errors import ConfigError, Interrupted, choice

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str):
    """Register the decorated function as subcommand `name`'s handler."""

    def register(fn):
        COMMANDS[name] = fn
        return fn

    return register


def _print_json(value) -> None:
    """Strict JSON on stdout: NaN and infinities become null, never bare NaN/Infinity tokens."""
    from research.coordination import jsonable

    print(json.dumps(jsonable(value), indent=2, allow_nan=False, default=str))


@command("status")
def _status(args: argparse.Namespace) -> int:
    import optuna

    from research import coordination, extrapolate, judging, names, render, storage, studies

    url = storage.resolve(args.storage)
    backend = storage.open_existing(url)
    cache = judging.cache_of(url)  # the sweep's analyses, where still current
    held = optuna.get_all_study_names(storage=backend)
    if not held and not args.json:
        print(f"no studies in {storage.redact(url)}")
    analyses, rows = [], []
    for name in held:
        study = optuna.load_study(study_name=name, storage=backend)
        record = studies.load(study)
        judged = list(judging.judge(record, cache).analyses) if record is not None else None
        counts = coordination.counts(study)
        if args.json:
            rows.append({"study": name, "counts": counts,
                         "objectives": [render.row(name, a) for a in judged or []]})  # fmt: skip
        else:
            print(render.summary(name if names.is_safe(name) else ascii(name), counts, judged))
        analyses += (judged or [])[:1]
    series = extrapolate.series(analyses)
    if args.json:
        _print_json({"storage": storage.redact(url), "studies": rows,
                     "series": [dataclasses.asdict(e) for e in series]})  # fmt: skip
        return 0
    for e in series:
        print(render.series_summary(e))
    return 0


@command("advise")
def _advise(args: argparse.Namespace) -> int:
    from research import advise, experiment, judging, storage, studies

    cfg = experiment.load(args.config, args.profile, args.set)
    judged = []
    url = storage.resolve(args.storage, cfg.search.runs_dir)
    if "://" in url or os.path.exists(url):
        found = studies.find(cfg, storage.open_existing(url))
        record = studies.load(found) if found is not None else None
        judged = list(judging.judge(record, judging.cache_of(url)).analyses) if record is not None else []
    advice = advise.advise(cfg, judged)
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
    else:
        print(f"searched layers take the study's alpha* for {advice['evidence']['objective']}, its own objective;")
    for e in advice["evidence_by_objective"]:
        said = f"{_fmt(e['alpha'])} [{_fmt(e['interval'][0])}, {_fmt(e['interval'][1])}]" if e["alpha"] else e["status"]
        print(f"  alpha* for {e['objective']}: {said}")
    rows = [
        [r["layer"], str(r["shape"]), r["mode"], f"{r['alpha']:.3g}", f"{r['std']:.4g}", r["source"]]
        for r in advice["layers"]
    ]
    print(_markdown(["layer", "kernel", "fan mode", "alpha", "std", "from"], rows))
    return 0


@command("lsuv")
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


@command("report")
def _report(args: argparse.Namespace) -> int:
    from research import dashboard, devices, render, report, storage

    devices.use_cpu_cores()
    url = storage.resolve(args.storage)
    artifacts = None  # read-only unless asked: publishing writes notes into the storage
    if args.publish:
        artifacts = args.artifacts or dashboard.artifacts_folder(url, "runs")
    columns = [c.strip() for c in args.tex_columns.split(",")] if args.tex_columns else None
    unknown = sorted(set(columns or ()) - set(render.LATEX_COLUMNS))
    if unknown:
        raise ConfigError(f"--tex-columns {unknown} are not columns; accepted: {', '.join(render.LATEX_COLUMNS)}.")
    tex = {"studies": args.tex_study, "columns": columns, "width": rf"\{args.tex_width}width"}
    path = report.write(url, args.out, figures=not args.no_figures, size=args.size, artifacts=artifacts, tex=tex)
    if args.json:
        _print_json(json.loads((path.parent / "report.json").read_text()))
        return 0
    print(path.read_text())
    print(f"written: {path.parent}/report.{{md,tex,json}} and {path.parent}/figures/ (PDF, SVG, PNG)")
    return 0


@command("export")
def _export(args: argparse.Namespace) -> int:
    from research import export, storage

    written = export.write(storage.resolve(args.storage), args.out, args.format)
    for path, rows in written.items():
        print(f"{path}: {rows} rows")
    return 0


@command("dashboard")
def _dashboard(args: argparse.Namespace) -> int:
    import ipaddress

    from research import storage

    loopback = args.host == "localhost" or _is_loopback(args.host, ipaddress)
    if not loopback and not args.expose:
        raise ConfigError(
            f"--host {args.host} listens beyond this machine; add --expose to allow it, or use 127.0.0.1."
        )
    url = storage.resolve(args.storage)
    backend = storage.open_existing(url, writable=args.writable)
    from research import dashboard

    folder = args.artifacts or dashboard.recorded_folder(backend)  # where the sweep published, from any directory
    store = dashboard.artifact_store(folder) if folder and os.path.isdir(folder) else None  # none published
    mode = "read and write" if args.writable else "read-only"
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"optuna-dashboard for {storage.redact(url)} at http://{shown}:{args.port}/dashboard ({mode})", flush=True)
    try:
        dashboard.serve(backend, args.host, args.port, store, writable=args.writable, allow_hosts=args.allow_host)
    except OSError as err:
        raise ConfigError(f"--host {args.host} --port {args.port} cannot be served: {err.strerror}.") from None
    return 0


def _is_loopback(host: str, ipaddress) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@command("sweep")
def _sweep(args: argparse.Namespace) -> int:
    from research import dashboard, data, devices, experiment, judging, report, storage, sweep

    devices.host_only()  # the workers train on the accelerator; this process analyses and draws
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
            url = storage.resolve(args.storage, runs_dir)
            path = report.write(url, judging.folder(runs_dir), artifacts=dashboard.artifacts_folder(url, runs_dir))
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


@command("worker")
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

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2):  # USR1: sbatch --signal; USR2: submitit
        signal.signal(sig, on_signal)
    for member in studies.expand(cfg) if args.every_objective else [cfg]:
        worker = workers.Worker(member, url, worker_index=args.index, echo=lambda line: print(line, flush=True),
                                stop=stop)  # fmt: skip
        told = worker.run()
        print(f"[{worker.id}] {worker.name} done: told {told} trials", flush=True)
        if received:
            raise Interrupted(received[0])
    return 0


@command("theory")
def _theory(args: argparse.Namespace) -> int:
    from research import activations, theory, theory_cache

    chosen = args.activation or [n for n in activations.names() if n != "leaky_relu"] + [
        "leaky_relu:0.01",
        "leaky_relu:0.2",
    ]
    sigma_b = theory.validate_sigma_b(args.sigma_b)
    computed = {name: theory_cache.predictions(name, sigma_b) for name in chosen}
    rows = {name: preds for name, (preds, _) in computed.items()}
    if args.json:
        _print_json({n: {p.theory: {"alpha": p.alpha, "note": p.note} for p in preds} for n, preds in rows.items()})
        return 0
    print(f"Predicted optimal alpha (Var(W) = alpha / fan, sigma_b {sigma_b:g}, square layers; n/a: the rule's")
    print("derivation does not cover the activation; docs/theory.md derives each)\n")
    header = ["activation", *theory.THEORIES, "xi at forward"]
    table = []
    for name, preds in rows.items():
        by, xi = {p.theory: p for p in preds}, computed[name][1]
        table.append([name, *(_fmt(by[t].alpha) if by[t].alpha else "n/a" for t in theory.THEORIES), _fmt(xi)])
    print(_markdown(header, table))
    notes = {n: p.note for n, preds in rows.items() for p in preds if p.theory == "edge_of_chaos" and p.alpha is None}
    for name, note in notes.items():
        print(f"\n{name}: edge_of_chaos: {note}")
    return 0


@command("probe")
def _probe(args: argparse.Namespace) -> int:
    from research import init as initlib
    from research import models, predictions, probes

    probed = tuple(name for name, fam in models.FAMILIES.items() if fam.asrun is not None)  # real-valued inputs
    if args.model not in probed:
        raise choice("--model", args.model, probed)
    init = {"scale": 1.0, "mode": args.mode, "distribution": args.distribution}
    cfg = models.probe_config(args.model, args.activation, args.depth, args.width, init, args.sigma_b)
    alpha = args.alpha if args.alpha is not None else predictions.default_alpha(cfg)
    lo, hi = initlib.ALPHA_LIMITS
    if not lo <= alpha <= hi:
        raise ConfigError(f"--alpha must be a number in [{lo:g}, {hi:g}] (float32 training); got {args.alpha!r}.")
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
