"""Simulated studies shaped like real ones, with a known optimum: what the coverage tests draw.

Each seed is a random curve (common random numbers: seed s is the same weight draw at every
alpha), so its optimum and level shift from seed to seed; on top sit per-run noise and, for
trained objectives, a divergence cliff whose position also varies by seed. The truth is the
optimum of the population curve (the mean over seeds), computed from 20,000 simulated seeds.
Shapes are fitted by eye to the quick suite's stored studies (docs/theory.md: verdicts).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types

import numpy as np

from research import bracket, estimate, ridge


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    signed: bool  # probe: a signed log-ratio whose zero is the optimum; else log(loss) to minimise
    optimum: float  # of the idealised curve, in alpha
    alpha_range: tuple[float, float]
    trials: int
    seeds: int
    left: float  # curvature below the optimum (trained), or the slope at the zero (probe)
    right: float  # curvature above it (trained), or the probe's curvature (concave: it saturates)
    seed_shift: float  # sd of each seed's optimum shift, in log alpha
    seed_level: float  # sd of each seed's level shift
    noise: float  # sd of each run's noise
    cliff: float | None = None  # alpha beyond which runs diverge (seed-shifted like the optimum)
    chance: float = math.log(math.log(10.0))  # log of the chance-level loss a diverged run reports

    def curve(self, x: np.ndarray, shift: np.ndarray, level: np.ndarray) -> np.ndarray:
        """Each seed's noise-free value at log alpha x: [seeds, len(x)]."""
        d = x[None, :] - (math.log(self.optimum) + shift[:, None])
        if self.signed:
            value = self.left * d - self.right * d * d
        else:
            value = -3.0 + np.where(d < 0, self.left, self.right) * d * d
            value = np.minimum(value, self.chance)
        value = value + level[:, None]
        if self.cliff is not None and not self.signed:
            value = np.where(x[None, :] > math.log(self.cliff) + shift[:, None], self.chance, value)
        return value

    @functools.cached_property
    def truth(self) -> float:
        """alpha* of the population curve: its minimum, or its zero for a probe."""
        rng = np.random.default_rng(12345)
        x = np.linspace(*np.log(self.alpha_range), 4001)
        mean = self.curve(x, self.seed_shift * rng.normal(size=20000), self.seed_level * rng.normal(size=20000))
        mean = mean.mean(axis=0)
        return math.exp(zero_of(x, mean) if self.signed else estimate.optimum(x, mean)[1])

    def draw(self, rng: np.random.Generator) -> estimate.Observations:
        """One study: trials at log-uniform alphas, every trial running the same seeds."""
        x = np.sort(rng.uniform(*np.log(self.alpha_range), self.trials))
        shift, level = self.seed_shift * rng.normal(size=self.seeds), self.seed_level * rng.normal(size=self.seeds)
        values = self.curve(x, shift, level).T + self.noise * rng.normal(size=(self.trials, self.seeds))
        diverged = np.zeros_like(values, bool)
        if self.cliff is not None and not self.signed:
            diverged = x[:, None] > math.log(self.cliff) + shift[None, :]
            values = np.where(diverged, self.chance, values)
        return estimate.Observations(x, values, None, diverged, True)


def zero_of(x: np.ndarray, curve: np.ndarray) -> float:
    """Where a finely sampled curve first crosses zero upwards (linear between the samples)."""
    i = bracket.crossing(x, curve)
    return float(x[i] - curve[i] * (x[i + 1] - x[i]) / (curve[i + 1] - curve[i]))


SCENARIOS = {
    s.name: s
    for s in (
        # tanh MLP train loss: steep and asymmetric, seeds disagree by about 0.5 in log(loss)
        Scenario("trained_asymmetric", False, 1.8, (0.25, 8.0), 24, 4, 5.0, 3.5, 0.08, 0.3, 0.5),
        # ReLU MLP train loss: a shallow bowl that ends at a divergence cliff
        Scenario("trained_cliff", False, 2.0, (0.5, 8.0), 32, 4, 2.0, 2.0, 0.1, 0.2, 0.3, cliff=5.5),
        # a probe's signed log-ratio (tanh Jacobian, ReLU forward): smooth, concave, each seed
        # shifted by a few percent (at ReLU the whole seed-to-seed spread is this shift)
        Scenario("probe_zero", True, 1.0, (0.25, 8.0), 24, 8, 1.0, 0.15, 0.03, 0.0, 0.005),
    )
}


# --- the 2-D (alpha, learning rate) studies every trained headline goes through ---------------------
@dataclasses.dataclass(frozen=True)
class Surface:
    """log(loss) over (log alpha x, log lr y) for each seed: a bowl in alpha around the seed's
    optimum (left/right curvatures, or a kink: linear above it), a bowl in lr around the ridge
    r(x) = ridge + slope (x - log 2), and divergence beyond the stability edge r(x) + edge (the
    seed's edge shifted by `edge_shift`); per-seed level and per-run noise on top."""

    name: str
    optimum: float
    slope: float  # d log lr* / d log alpha
    left: float
    right: float
    lr_curvature: float
    edge: float  # the stability edge above the ridge, in log lr: small puts the optimum at a cliff
    kink: bool = False
    ridge: float = math.log(3e-3)
    seed_shift: float = 0.05
    edge_shift: float = 0.1
    seed_level: float = 0.08
    noise: float = 0.04
    chance: float = math.log(math.log(10.0))

    def value(self, x: np.ndarray, y: np.ndarray, shift: np.ndarray, level: np.ndarray) -> np.ndarray:
        """[seeds, cells] noise-free log loss at cells x with log lrs y ([cells] or [seeds, cells])."""
        d = x[None, :] - (math.log(self.optimum) + shift[:, None])
        alpha_part = np.where(d < 0, self.left * d * d, self.right * (np.abs(d) if self.kink else d * d))
        lr_part = self.lr_curvature * (np.atleast_2d(y) - self.ridge_at(x)[None, :]) ** 2
        return np.minimum(-1.0 + alpha_part + lr_part + level[:, None], self.chance)

    def ridge_at(self, x: np.ndarray) -> np.ndarray:
        return self.ridge + self.slope * (x - math.log(2.0))

    def diverges(self, x: np.ndarray, y: np.ndarray, edge: np.ndarray) -> np.ndarray:
        return np.atleast_2d(y) > (self.ridge_at(x) + self.edge)[None, :] + edge[:, None]

    def draw(self, rng: np.random.Generator, x: np.ndarray, y: np.ndarray, seeds: int, noise: float | None = None):
        """(log loss [cells, seeds] with diverged runs at chance, diverged [cells, seeds])."""
        shift, level = self.seed_shift * rng.normal(size=seeds), self.seed_level * rng.normal(size=seeds)
        edge = self.edge_shift * rng.normal(size=seeds)
        values = self.value(x, y, shift, level) + (self.noise if noise is None else noise) * rng.normal(
            size=(seeds, len(x))
        )
        diverged = self.diverges(x, y, edge)
        return np.where(diverged, self.chance, values).T, diverged.T

    @functools.cached_property
    def truth(self) -> float:
        """The alpha whose best learning rate gives the lowest mean loss over the seeds that do not
        diverge (cells where most diverge are beyond the edge): what the profile estimates."""
        rng = np.random.default_rng(12345)
        n = 4000
        shift, level, edge = (s * rng.normal(size=n) for s in (self.seed_shift, self.seed_level, self.edge_shift))
        xs = np.linspace(math.log(self.optimum) - 0.4, math.log(self.optimum) + 0.4, 161)
        best = []
        for x in xs:
            y = self.ridge_at(np.array([x]))[0] + np.linspace(-1.0, self.edge + 0.3, 131)
            xx = np.full_like(y, x)
            v, div = self.value(xx, y, shift, level), self.diverges(xx, y, edge)
            mean = np.where(div, 0.0, v).sum(0) / np.maximum((~div).sum(0), 1)
            best.append(np.min(np.where((~div).mean(0) > 0.5, mean, np.inf)))
        return float(math.exp(xs[int(np.argmin(best))]))


SURFACES = {
    s.name: s
    for s in (
        # tanh-like: a gentle ridge, asymmetric bowl, the stability edge well above lr*
        Surface("ridge_smooth", 2.3, -1.5, 3.0, 1.5, 0.15, edge=1.2),
        # ReLU-like: a steep ridge (lr* ~ alpha^-8) with the best lr one step under the cliff
        Surface("ridge_cliff", 1.85, -8.0, 2.0, 2.0, 0.12, edge=0.35),
        # a kinked profile: steep below the optimum, linear above it
        Surface("ridge_kinked", 1.3, -3.0, 4.0, 0.6, 0.15, edge=0.8, kink=True),
    )
}


def rectangle(surface: Surface, rng: np.random.Generator, alphas: np.ndarray, lrs: np.ndarray, seeds: int):
    """The old design: every alpha at the same learning rates, diverged runs at chance level."""
    x, y = (a.ravel() for a in np.meshgrid(np.log(alphas), np.log(lrs), indexing="ij"))
    values, diverged = surface.draw(rng, x, y, seeds)
    return estimate.Observations(x, values, y, diverged, True)


RUNG_BIAS = (0.5 * math.log(2), 0.25 * math.log(2))  # early readings favour larger rates (Wu et al. 2018)


def ridge_design(surface: Surface, rng: np.random.Generator, coarse: np.ndarray, predictions: tuple = (),
                 seeds: int = 8, lrs: int = 7, spacing: float = 2.0, per_octave: int = 4, size: int = 8,
                 halving=None, rung_bias: tuple = RUNG_BIAS):  # fmt: skip
    """The ridge design as ridge.py runs it: a pilot over the `coarse` alphas (2 seeds, noisier,
    lrs 4x apart over 1e-6..10) gives the ridge and the best alpha; `size` alphas of the fine grid
    around it (ridge.window), each at `lrs` rates `spacing` apart around the ridge, each seed at
    its own phase (evenly spread, as ridge.seed_phases); then successive halving by `ridge.halved`
    (`halving`: the search.ridge settings, default ridge.py's) on noisy early readings whose best
    rate sits `rung_bias` (log lr) above the final one. Returns (observations of the cells that
    trained to the end, the design's alphas)."""
    pilot_y = np.log(np.geomspace(1e-6, 10.0, 12))
    px, py = (a.ravel() for a in np.meshgrid(np.log(coarse), pilot_y, indexing="ij"))
    pv, _ = surface.draw(rng, px, py, 2, noise=3 * surface.noise)
    pv = pv.mean(1).reshape(len(coarse), -1)
    best = {float(a): (float(pv[i].min()), float(np.exp(pilot_y[np.argmin(pv[i])]))) for i, a in enumerate(coarse)}
    alphas = np.array(ridge.window(best, per_octave, size, predictions))
    offsets = (np.arange(lrs) - (lrs - 1) / 2) * math.log(spacing)
    x = np.repeat(np.log(alphas), lrs)
    y = (np.log([ridge.ridge_at(best, a) for a in alphas])[:, None] + offsets[None, :]).ravel()
    phases = ((rng.permutation(seeds) + rng.uniform()) / seeds - 0.5) * math.log(spacing)
    values, diverged = surface.draw(rng, x, y[None, :] + phases[:, None], seeds)
    r = halving or ridge.default_config()
    cells = [(float(a), float(b)) for a, b in zip(np.repeat(alphas, lrs), y, strict=True)]
    alive = set(range(len(x)))
    seed_y = y[None, :] + phases[:, None] - surface.ridge_at(x)[None, :]  # [seeds, cells] log lr past the ridge
    for rung, bias in zip(r.rungs, rung_bias, strict=False):
        drift = surface.lr_curvature * (bias**2 - 2 * bias * seed_y)  # the early bowl centred `bias` higher
        early = values + drift.T + 2 * surface.noise * rng.normal(size=values.shape)
        alive -= ridge.halved(r, rung, ridge.censored_means(early, ~diverged), cells, alive, tuple(predictions))
    kept = np.array(sorted(alive))
    return estimate.Observations(x[kept], values[kept], y[kept], diverged[kept], True, phases), tuple(alphas)


# --- probe zeros on the mean-field curves of the activation zoo (the design bracket.py runs) --------
@functools.cache
def mean_field_curve(activation: str) -> tuple[np.ndarray, np.ndarray]:
    """(log alpha, the forward log-ratio per layer) of the zoo's 20-layer MLP at unit input moment,
    as mean-field theory gives it (asrun.py): kinked at the zero for GELU and SiLU, flat for softplus."""
    from research import asrun, experiment, objectives  # the zoo's config; only this part needs it

    cfg = experiment.load(f"experiments/zoo.py:activation='{activation}'",
                          overrides=["search.objective='forward_log_ratio'"])  # fmt: skip
    x = np.linspace(math.log(0.2), math.log(20.0), 3001)
    return x, asrun.log_ratio(cfg, objectives.get("forward_log_ratio"), np.exp(x), np.ones(1))


@dataclasses.dataclass(frozen=True)
class ProbeCurve:
    """Seed s measures the mean-field curve shifted by shift_s along log alpha (which, as in real
    probes, spreads the seeds most where the curve is steepest: beside a kink) plus a level
    level_s, plus each run's noise; seeds are common to every alpha."""

    activation: str
    seed_shift: float  # sd, in log alpha
    seed_level: float  # sd, in log-ratio per layer
    noise: float

    def draw(self, rng: np.random.Generator, x: np.ndarray, seeds: int) -> np.ndarray:
        """[len(x), seeds] measured log-ratios."""
        cx, cy = mean_field_curve(self.activation)
        shift, level = self.seed_shift * rng.normal(size=seeds), self.seed_level * rng.normal(size=seeds)
        values = np.interp(x[:, None] + shift[None, :], cx, cy) + level[None, :]
        return values + self.noise * rng.normal(size=values.shape)

    @functools.cached_property
    def truth(self) -> float:
        """The zero of the population curve (the mean over 20,000 seeds)."""
        cx, _ = mean_field_curve(self.activation)
        x = cx[(cx > math.log(0.5)) & (cx < math.log(8.0))]
        mean = self.draw(np.random.default_rng(12345), x, 20000).mean(axis=1)
        return math.exp(zero_of(x, mean))


# Fitted by eye to the zoo's probes at 128 units, 32 seeds (seed sd near the zero: GELU 0.05-0.09,
# SiLU 0.06-0.08, softplus 0.01 on a slope of 0.03 per unit log alpha).
PROBE_CURVES = {
    "gelu": ProbeCurve("gelu", 0.03, 0.01, 0.005),
    "silu": ProbeCurve("silu", 0.03, 0.01, 0.005),
    "softplus": ProbeCurve("softplus", 0.02, 0.008, 0.003),
}


def bracket_design(curve: ProbeCurve, rng: np.random.Generator, settings, alpha_range=(0.25, 16.0), seeds=32):
    """The two stages bracket.py runs: `settings.points` geometric alphas x `settings.seeds` seeds,
    then `settings.dense` alphas around the sign change x `seeds` seeds (fresh ones)."""
    x = np.linspace(*np.log(alpha_range), settings.points)
    means = curve.draw(rng, x, settings.seeds).mean(axis=1)
    dense = np.log([c["alpha"] for c in bracket.cells(types.SimpleNamespace(search=types.SimpleNamespace(
        bracket=settings)), x, means)])  # fmt: skip
    return estimate.Observations(dense, curve.draw(rng, dense, seeds))
