"""The theory of the network as run: mean-field maps iterated layer by layer for the actual model.

Idealised rules assume square layers, unit-variance inputs and infinite depth. A probe measures
something narrower: the least-squares log-slope across the layers of one statistic of this
model, at its widths (funnels included), its kernels' fans, its first layer's input second
moment (probe inputs and their scale), sigma_b and, for an RNN, the input drive at each of
its time steps. This module predicts that slope from the mean-field variance maps (Poole et al.
2016; Schoenholz et al. 2017) and returns the alpha that zeroes it; docs/theory.md derives the
recursions. Zero padding of a 'SAME' convolution is kept: edge positions see fewer inputs.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
from scipy import optimize

from research import bracket, finite_width, init, models, objectives, probes, theory

_Q = np.geomspace(1e-14, 1e5, 1200)  # the variance grid the moment tables interpolate on


@dataclasses.dataclass(frozen=True)
class AsRun:
    """The as-run alpha of one probe study, or None and why."""

    alpha: float | None
    note: str


@functools.cache
def _tables(activation: str) -> tuple[np.ndarray, np.ndarray]:
    e_phi2, e_dphi2 = theory.moments(activation, _Q)
    return np.log(np.maximum(e_phi2, 1e-300)), np.log(np.maximum(e_dphi2, 1e-300))


def _moment(activation: str, which: int, q: np.ndarray) -> np.ndarray:
    """E[phi^2] (which 0) or E[phi'^2] (which 1) at variance q, interpolated in log-log."""
    table = _tables(activation)[which]
    return np.exp(np.interp(np.log(np.clip(q, _Q[0], _Q[-1])), np.log(_Q), table))


def _window_sum(m: np.ndarray, window: int, spatial_axes: int) -> np.ndarray:
    """Sum over each position's 'SAME'-padded window (zeros beyond the edges), per spatial axis."""
    lo, hi = (window - 1) // 2, window - 1 - (window - 1) // 2
    for axis in range(m.ndim - spatial_axes, m.ndim):
        n = m.shape[axis]
        pad = [(0, 0)] * m.ndim
        pad[axis] = (lo, hi)
        padded = np.pad(m, pad)
        m = sum(np.take(padded, np.arange(o, o + n), axis=axis) for o in range(window))
    return m


def statistics(model_cfg, alpha: dict[str, np.ndarray], input_moment: np.ndarray) -> dict[str, np.ndarray]:
    """Mean-field per-layer forward, backward and Jacobian statistics, shape [alphas, layers].

    `alpha` holds one array of alphas per layer group; `input_moment` is each probe input's mean
    square per position, [examples, *positions] (MLP: [examples]; CNN: per spatial position; RNN:
    per time step). The maps run per example and the statistic is averaged over examples and
    positions, where the probe averages it: the maps are nonlinear, so feeding them the batch's
    mean moment is exact only for a homogeneous activation without bias.
    """
    recursion = models.family(model_cfg).asrun
    if recursion is None:
        raise ValueError(f"no mean-field recursion is known for model family {model_cfg.name!r}: judged against"
                         " the idealised rules only")  # fmt: skip
    return RECURSIONS[recursion](model_cfg, alpha, np.asarray(input_moment, dtype=np.float64))


def _feed_forward(cfg, alpha, m_x) -> dict[str, np.ndarray]:
    """MLP (no spatial axes, window 1) and CNN ('SAME' windows over the spatial axes)."""
    layers = models.param_shapes(cfg)[models.family(cfg).layers]
    kernels = [tuple(layers[i]["kernel"].shape) for i in sorted(layers.keys())]
    spec, sb2, act = init.from_config(cfg.init), float(cfg.sigma_b) ** 2, cfg.activation
    spatial = m_x.ndim - 1  # the first axis holds the examples
    a = np.asarray(alpha["hidden"], np.float64).reshape(-1, *([1] * m_x.ndim))
    window = kernels[0][0] if spatial else 1
    if spatial and getattr(cfg, "stride", 1) != 1:
        raise ValueError("the as-run theory covers stride-1 convolutions")
    var = [init.variance(spec, k, 1.0) * a for k in kernels]  # Var(W_l) as run, [A, 1...]
    q, incoming = [], np.broadcast_to(m_x, (a.shape[0], *m_x.shape))
    for v, k in zip(var, kernels, strict=True):
        q.append(v * k[-2] * _window_sum(incoming, window, spatial) + sb2)
        incoming = _moment(act, 0, q[-1])
    dphi2 = [_moment(act, 1, ql) for ql in q]
    jac = [var[0] * kernels[0][-2] * _window_sum(np.ones_like(q[0]), window, spatial)]
    for v, k, d in zip(var[1:], kernels[1:], dphi2[:-1], strict=True):
        jac.append(v * k[-2] * _window_sum(d * jac[-1], window, spatial))
    grad = [dphi2[-1]]  # the readout's constant factor drops out of the slope
    for v, k, d in zip(var[:0:-1], kernels[:0:-1], dphi2[-2::-1], strict=True):
        grad.append(d * v * k[-1] * _window_sum(grad[-1], window, spatial))
    mean = lambda xs: np.stack([x.reshape(x.shape[0], -1).mean(axis=1) for x in xs], axis=-1)  # noqa: E731
    return {"forward": mean(q), "backward": mean(grad[::-1]), "jacobian": mean(jac)}


def _recurrent(cfg, alpha, m_x) -> dict[str, np.ndarray]:
    """Vanilla RNN: pre_t = W_x x_t + b + W_h phi(pre_{t-1}); time steps are the layers."""
    shapes = models.param_shapes(cfg)
    k_in, k_rec = tuple(shapes["input"]["kernel"].shape), tuple(shapes["recurrent"]["kernel"].shape)
    v_x = init.variance(init.from_config(cfg.init), k_in, 1.0) * np.asarray(alpha["input"], np.float64)
    v_h = init.variance(init.from_config(cfg.recurrent_init), k_rec, 1.0) * np.asarray(alpha["recurrent"], np.float64)
    act, sb2, hidden = cfg.activation, float(cfg.sigma_b) ** 2, k_rec[0]
    v_x, v_h = v_x[:, None], v_h[:, None]  # [A, 1]: broadcast over the examples
    drive = v_x[..., None] * k_in[0] * m_x[None] + sb2  # [A, B, T]: each example's input share of each step
    q = [drive[..., 0]]
    for t in range(1, m_x.shape[-1]):
        q.append(drive[..., t] + v_h * hidden * _moment(act, 0, q[-1]))
    dphi2 = [_moment(act, 1, qt) for qt in q]
    jac = [v_x * k_in[0] * np.ones_like(q[0])]
    for d in dphi2[:-1]:
        jac.append(v_h * hidden * d * jac[-1])
    grad = [dphi2[-1]]
    for d in dphi2[-2::-1]:
        grad.append(d * v_h * hidden * grad[-1])
    mean = lambda xs: np.stack(xs, -1).mean(axis=1)  # noqa: E731  (over the examples)
    return {"forward": mean(q), "backward": mean(grad[::-1]), "jacobian": mean(jac)}


def _residual(cfg, alpha, m_x) -> dict[str, np.ndarray]:
    """Residual MLP (residual.py): each block adds a branch independent of the stream at init, so
    q_{l+1} = q_l + Var(branch_l); a LayerNorm resets its input's second moment to 1. The probe reads
    the searched layers' outputs; only the forward statistic is derived."""
    spec, act, width = init.from_config(cfg.init), cfg.activation, cfg.width
    gain = init.variance(spec, (width, width), 1.0) * width * np.asarray(alpha["branch"], np.float64)[:, None]
    inner = gain if cfg.branch == "all" else 2.0  # "last": the branch's first layer keeps He's 2 / fan_in
    normed = lambda q: np.ones_like(q) if cfg.norm == "layer" else q  # noqa: E731
    q, out = np.broadcast_to(m_x, (gain.shape[0], *m_x.shape)), []  # the stem (LeCun) keeps each input's moment
    for _ in range(cfg.depth):
        mid = inner * _moment(act, 0, normed(q))
        out += [mid] if cfg.branch == "all" else []  # both layers are probed, in call order
        out.append(gain * _moment(act, 0, normed(mid)))
        q = q + out[-1]
    return {"forward": np.stack(out, axis=-1).mean(axis=1)}


# A family names its own (models.Family.asrun).
RECURSIONS = {"feed_forward": _feed_forward, "recurrent": _recurrent, "residual": _residual}


def log_ratio(cfg, objective: objectives.Objective, alphas: np.ndarray, input_moment: np.ndarray) -> np.ndarray:
    """The log-ratio per layer the probe objective measures, as mean-field predicts it, at each alpha
    (on the searched groups; the others at 1)."""
    alphas = np.asarray(alphas, np.float64)
    searched = tuple(cfg.search.alpha_groups) or models.groups(cfg.model)
    per_group = {g: alphas if g in searched else np.ones_like(alphas) for g in models.groups(cfg.model)}
    moment = np.asarray(input_moment, np.float64)
    if objective.one_layer:  # the probe divides its inputs by sqrt(alpha) of the first group
        first = per_group[models.groups(cfg.model)[0]]
        moment = moment[None] / first.reshape(-1, *([1] * moment.ndim))
        forward = np.concatenate(
            [statistics(cfg.model, {g: v[i : i + 1] for g, v in per_group.items()}, m)["forward"]
             for i, m in enumerate(moment)]
        )  # fmt: skip
        return np.log(forward[:, 1] / forward[:, 0])
    stats = statistics(cfg.model, per_group, moment)
    if objective.statistic not in stats:
        raise ValueError(f"the {cfg.model.name} recursion derives no {objective.statistic} statistic")
    return probes.log_slope(stats[objective.statistic], np)


def predict(cfg, input_moment, at_width: bool = True) -> AsRun:
    """The alpha at which the study's probe objective is zero in mean-field theory as run; with
    `at_width`, shifted by the O(1/n) drift where it is derived (finite_width.py)."""
    objective = objectives.get(cfg.search.objective)
    if objective.trained:
        return AsRun(None, "n/a: a trained objective")
    if input_moment is None:
        return AsRun(None, "n/a: the study recorded no probe input moments")
    lo, hi = cfg.search.alpha_range
    grid = np.geomspace(lo / 4, hi * 4, 241)
    try:
        slope = log_ratio(cfg, objective, grid, input_moment)
    except ValueError as err:
        return AsRun(None, f"n/a: {err}")
    i = bracket.crossing(np.log(grid), slope)
    if i is None:
        return AsRun(None, f"no zero of the log-ratio in [{grid[0]:.3g}, {grid[-1]:.3g}]")
    f = lambda la: float(log_ratio(cfg, objective, np.array([math.exp(la)]), input_moment)[0])  # noqa: E731
    root = math.exp(optimize.brentq(f, math.log(grid[i]), math.log(grid[i + 1]), xtol=1e-12))
    moved = width_shift(cfg) if at_width else None
    if moved is not None:
        return AsRun(root * math.exp(moved), f"mean-field recursion as run, moved {moved:+.2%} by its finite width")
    return AsRun(root, "mean-field recursion of the model as run")


def width_shift(cfg) -> float | None:
    """log alpha*(widths) - log alpha*(infinite width) of the study's probe where it is derived (the
    forward probe of a bias-free ReLU MLP, finite_width.py); None elsewhere."""
    objective = objectives.get(cfg.search.objective)
    if objective.statistic != "forward" or objective.one_layer or not finite_width.applies(cfg):
        return None
    return finite_width.shift(cfg)
