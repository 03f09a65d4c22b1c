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

import numpy as np

from research import estimate


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
        return math.exp(estimate.optimum(x, mean, self.signed)[1])

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
