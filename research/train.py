"""The population trainer: P trials as one compiled program.

`vmap` over members, `lax.scan` over the steps of a chunk, data already on the device.
Each member's alpha (per layer group), learning rate and seed are traced arrays, so new
values never recompile. After each chunk the host gets per-member metrics for progress,
pruning and checkpoints. A member whose loss or gradient turns NaN or inf is frozen and flagged.
On CPU each device trains its members a small block at a time, so a block's weights stay in cache.
Members that diverged or whose trial was pruned leave at the next chunk boundary: the rest are
packed evenly over the devices, spare rows frozen (their blocks skip), in a smaller compiled size
once they fit one (powers of two per device, so recompiles stay few): no compute is spent on
members whose results are settled.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
from collections.abc import Callable, Collection, Mapping
from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from research import data as datalib
from research import devices, models, recipe
from research.devices import activation_bytes, member_bytes
from research.members import METRICS, Curves, Population, Progress, Result, Roster

Array = jax.Array
STOP = "stop"  # what an on_chunk callback returns to end training early
PAUSE = "pause"  # ... to save a checkpoint now and end training (preemption: resume later)


@flax.struct.dataclass
class TrainState:
    """The population's training state; every field has the members on its leading axis but `step`."""

    params: Any
    opt: Any
    step: Array  # shared by all members
    diverged: Array
    diverged_step: Array  # the step a member froze at, -1 while healthy
    learning_rate: Array
    seed: Array


class _Members(NamedTuple):
    """What a chunk updates per member (a device's share of them under shard_map)."""

    params: Any
    opt: Any
    diverged: Array
    diverged_step: Array
    learning_rate: Array


class Arrays(NamedTuple):
    """The data a chunk reads, an argument of the compiled program (never baked into it)."""

    x_train: Array
    y_train: Array
    x_eval: Array  # the training examples evaluated after each chunk
    y_eval: Array
    x_val: Array
    y_val: Array


@dataclasses.dataclass(frozen=True)
class StepSpec:
    """What a step needs besides arrays: the model's structure, the optimiser, the loss and task."""

    graph: Any
    tx: optax.GradientTransformation
    loss: str
    task: str


def member_step(spec: StepSpec, params, opt, diverged, learning_rate, x: Array, y: Array) -> tuple:
    """One optimiser step of one member on the batch (x, y), a pure function of arrays; a NaN/inf
    loss or gradient freezes the member where it stands. Returns (params, opt, diverged, loss, |grad|)."""
    loss, grads = jax.value_and_grad(lambda p: _batch_loss(spec, p, x, y))(params)
    gnorm = _norm(grads)
    now = diverged | ~(jnp.isfinite(loss) & jnp.isfinite(gnorm))
    updates, new_opt = spec.tx.update(grads, opt, params)
    new_params = jax.tree.map(lambda p, u: p - learning_rate * u, params, updates)
    keep = lambda old, new: jax.tree.map(lambda o, n: jnp.where(now, o, n), old, new)  # noqa: E731
    return keep(params, new_params), keep(opt, new_opt), now, loss, gnorm


def member_metrics(spec: StepSpec, params, data: Arrays) -> dict[str, Array]:
    """One member's losses and error on the evaluation examples, and its per-layer variance."""
    out = {}
    for split, (x, y) in (("train", (data.x_eval, data.y_eval)), ("val", (data.x_val, data.y_val))):
        logits, preacts = models.apply(spec.graph, params, x)
        out[f"{split}_loss"] = recipe.loss(spec.loss, spec.task, logits, y).mean()
        if split == "val":
            out["val_error"] = recipe.error(spec.task, logits, y)
            out["layer_variance"] = jnp.stack([jnp.mean(h**2) for h in preacts])
    return out


def _batch_loss(spec: StepSpec, params, x: Array, y: Array) -> Array:
    logits = models.apply(spec.graph, params, x)[0]
    return recipe.loss(spec.loss, spec.task, logits, y).mean()


class Trainer:
    """Compiles the init and chunk programs of one experiment, once; the data is their argument."""

    def __init__(self, model_cfg, train_cfg, dataset: datalib.Dataset, *, devices=None, population_size: int = 0):
        recipe.validate(train_cfg)
        models.validate(model_cfg)
        self.model_cfg, self.cfg = model_cfg, train_cfg
        chance = recipe.chance_loss(train_cfg.loss, dataset)
        self.diverged_value = chance if train_cfg.diverged_value is None else train_cfg.diverged_value
        self.groups = models.groups(model_cfg)
        self.graph = models.graphdef(model_cfg)
        self.tx = recipe.optimizer(train_cfg)
        self.num_chunks = train_cfg.steps // train_cfg.chunk_steps
        n_eval, n_val = min(train_cfg.eval_examples, len(dataset.x_train)), train_cfg.eval_examples
        self.spec = StepSpec(self.graph, self.tx, train_cfg.loss, dataset.task)
        self.population_size = population_size  # pad smaller populations to this: one compile
        self.devices = list(devices or jax.local_devices())
        self._mesh = _trials_mesh(self.devices) if len(self.devices) > 1 else None
        arrays = Arrays(dataset.x_train, dataset.y_train, dataset.x_train[:n_eval], dataset.y_train[:n_eval],
                        dataset.x_val[:n_val], dataset.y_val[:n_val])  # fmt: skip
        replicated = jax.sharding.NamedSharding(self._mesh, jax.sharding.PartitionSpec()) if self._mesh else None
        self.arrays = jax.device_put(arrays, replicated)  # every device holds the data once
        self._member_bytes = member_bytes(models.param_shapes(model_cfg), self.tx)
        rows = max(train_cfg.batch_size, n_eval)  # a step's batch, or an evaluation's examples
        self._step_bytes = activation_bytes(functools.partial(models.apply, self.graph), models.param_shapes(model_cfg),
                                           dataset.x_train.shape[1:], rows)  # fmt: skip
        self._check_memory(population_size)
        self.traces = collections.Counter()  # program -> times traced (each trace is a compilation)
        self.init = jax.jit(self._init)
        self.chunk = jax.jit(self._chunk, donate_argnums=0)

    # --- the pure programs ------------------------------------------------------------------
    def _init(self, alpha: Mapping[str, Array], learning_rate: Array, seed: Array) -> TrainState:
        self.traces["init"] += 1  # runs at trace time only
        init_keys = _member_keys(seed)[:, 0]
        params = jax.vmap(lambda k, a: models.init_state(self.model_cfg, k, a))(init_keys, dict(alpha))
        return TrainState(
            params=params,
            opt=jax.vmap(self.tx.init)(params),
            step=jnp.zeros((), jnp.int32),
            diverged=jnp.zeros(seed.shape, bool),
            diverged_step=jnp.full(seed.shape, -1, jnp.int32),
            learning_rate=learning_rate,
            seed=seed,
        )

    def _chunk(self, state: TrainState, data: Arrays) -> tuple[TrainState, dict[str, Array]]:
        self.traces["chunk"] += 1  # runs at trace time only
        members = _Members(state.params, state.opt, state.diverged, state.diverged_step, state.learning_rate)
        steps = self._steps
        if self._mesh is not None:  # each device trains its own members: no communication at all
            spec, replicated = jax.sharding.PartitionSpec("trials"), jax.sharding.PartitionSpec()
            # check_vma=False: JAX's erf (exact GELU) lowers through a `polynomial` primitive that fails
            # the varying-axes check on a member's activations; the check guards collectives, and
            # there are none here.
            steps = jax.shard_map(
                steps, mesh=self._mesh, in_specs=(spec, spec, replicated, replicated), out_specs=spec, check_vma=False
            )
        members, losses, gnorms, metrics = steps(members, state.seed, state.step, data)
        cfg, diverged = self.cfg, members.diverged
        new = state.replace(**members._asdict(), step=state.step + cfg.chunk_steps)
        metrics["grad_norm"] = jnp.where(diverged, jnp.nan, jnp.mean(gnorms, axis=1))
        metrics["step_loss"] = losses  # [P, chunk_steps]
        for name in ("train_loss", "val_loss"):
            metrics[name] = jnp.where(diverged, self.diverged_value, metrics[name])
        metrics["val_error"] = jnp.where(diverged, self._diverged_error, metrics["val_error"])
        metrics["diverged"], metrics["diverged_step"] = diverged, members.diverged_step
        return new, metrics

    def _steps(self, members: _Members, seed: Array, step: Array, data: Arrays) -> tuple[_Members, Array, Array, dict]:
        """One chunk of steps for a device's members, `block` at a time, each block evaluated at
        its end: a block's weights stay in cache through the chunk, where a whole population's
        would stream from memory each step. Blocks are read from and written back into the
        (donated) members in place, so memory holds the population once, whatever its size."""
        cfg, n, size = self.cfg, len(data.x_train), len(seed)
        block = self._block(size)
        take = lambda a, start: jax.lax.dynamic_slice_in_dim(a, start, block)  # noqa: E731
        if cfg.shared_data_order:
            plan = datalib.batch_plan(jax.random.key(cfg.data_seed), n, cfg.batch_size, cfg.steps)
            plan = jax.lax.dynamic_slice_in_dim(plan, step, cfg.chunk_steps, axis=0)  # [steps, batch]
            block_plan = lambda start: (plan, None)  # noqa: E731
        else:
            plans = datalib.batch_plans(_member_keys(seed)[:, 1], n, cfg.batch_size, cfg.steps)
            plans = jax.lax.dynamic_slice_in_dim(plans, step, cfg.chunk_steps, axis=1)  # [P, steps, batch]
            block_plan = lambda start: (jnp.moveaxis(take(plans, start), 1, 0), 0)  # noqa: E731

        def one_block(members, start):
            mine = jax.tree.map(lambda a: take(a, start), members)
            trained, *out = self._train_block(mine, *block_plan(start), step, data)
            put = lambda a, b: jax.lax.dynamic_update_slice_in_dim(a, b, start, 0)  # noqa: E731
            return jax.tree.map(put, members, trained), out

        members, (losses, gnorms, metrics) = jax.lax.scan(one_block, members, jnp.arange(0, size, block))
        flat = lambda a: a.reshape(size, *a.shape[2:])  # noqa: E731
        return members, flat(losses), flat(gnorms), jax.tree.map(flat, metrics)

    def _train_block(self, members: _Members, plan: Array, data_axis: int | None, step: Array, data: Arrays) -> tuple:
        """`lax.scan` over the chunk's steps (`plan`: [steps, (block,) batch]) of a block of members,
        each step vmapped over them; then the block's evaluation. Once every member of the block
        has diverged (a trial's seeds sit side by side), its remaining steps are skipped."""
        params, opt, diverged, diverged_step, learning_rate = members
        batch = lambda indices: (data.x_train[indices], data.y_train[indices])  # noqa: E731
        step_all = jax.vmap(functools.partial(member_step, self.spec), in_axes=(0, 0, 0, 0, data_axis, data_axis))

        def one_step(carry, indices):
            params, opt, diverged, diverged_step, t = carry
            params, opt, now, loss, gnorm = step_all(params, opt, diverged, learning_rate, *batch(indices))
            diverged_step = jnp.where(now & ~diverged, t, diverged_step)
            return (params, opt, now, diverged_step, t + 1), (loss, gnorm)

        def skip(carry, indices):
            nan = jnp.where(carry[2], jnp.float32(jnp.nan), 0.0)  # built from the carry: per device under shard_map
            return (*carry[:4], carry[4] + 1), (nan, nan)

        def body(carry, indices):
            return jax.lax.cond(jnp.all(carry[2]), skip, one_step, carry, indices)

        carry = (params, opt, diverged, diverged_step, step)
        (params, opt, diverged, diverged_step, _), (losses, gnorms) = jax.lax.scan(body, carry, plan)
        members = _Members(params, opt, diverged, diverged_step, learning_rate)
        metrics = jax.vmap(member_metrics, in_axes=(None, 0, None))(self.spec, params, data)
        return members, losses.T, gnorms.T, metrics

    # --- the host loop ----------------------------------------------------------------------
    def start(self, population: Population) -> TrainState:
        """A fresh population state, sharded over local devices when there are several, laid out
        as `layout` says (spare rows frozen)."""
        population.validate(self.groups)
        self._check_memory(population.size)
        slots = self.layout(population.size, self._rows(population.size))
        at = np.maximum(slots, 0)
        args = ({g: a[at] for g, a in population.alpha.items()}, population.learning_rate[at], population.seed[at])
        if self._mesh is not None:
            args = jax.device_put(args, self._member_sharding())
        return self._frozen(self.init(*args), slots < 0)

    def begin(self, population: Population) -> Progress:
        """`population` before its first step, every member in training."""
        slots = self.layout(population.size, self._rows(population.size))
        return Progress(self.start(population), Roster.everyone(population.size, slots), Curves(), 0)

    def layout(self, count: int, rows: int) -> np.ndarray:
        """Which of `count` members each of `rows` rows holds: an even share per device, each
        device's spare rows (-1) at its end, so whole blocks of them are frozen and skip."""
        share = rows // len(self.devices)
        out = np.full(rows, -1)
        for d in range(len(self.devices)):
            lo, hi = count * d // len(self.devices), count * (d + 1) // len(self.devices)
            out[d * share : d * share + hi - lo] = np.arange(lo, hi)
        return out

    def abstract_state(self, rows: int) -> TrainState:
        """Shapes and dtypes of a state of `rows` members (what a checkpoint of it holds)."""
        vector = lambda dtype: jax.ShapeDtypeStruct((rows,), dtype)  # noqa: E731
        alpha = {g: vector(jnp.float32) for g in self.groups}
        return jax.eval_shape(self._init, alpha, vector(jnp.float32), vector(jnp.int32))

    def place(self, state: TrainState) -> TrainState:
        """Put a host state on the devices, members sharded when there are several."""
        if self._mesh is None:
            return jax.device_put(state)
        replicated = jax.sharding.NamedSharding(self._mesh, jax.sharding.PartitionSpec())
        members = {f.name: getattr(state, f.name) for f in dataclasses.fields(state) if f.name != "step"}
        return state.replace(
            step=jax.device_put(state.step, replicated), **jax.device_put(members, self._member_sharding())
        )

    def advance(self, progress: Progress) -> dict[str, np.ndarray]:
        """Train `progress` one chunk further (in place) and return every member's metrics of
        it, in one transfer to the host; members that left report what they ended with."""
        rows = None
        if progress.state is not None:
            progress.state, out = self.chunk(progress.state, self.arrays)
            rows = jax.device_get(out)
            progress.roster.update(rows)
        progress.step += self.cfg.chunk_steps
        metrics = self._everyone(rows, progress.roster)
        progress.curves.add(metrics)
        return metrics

    def compact(self, progress: Progress, retired: Collection[int] = ()) -> None:
        """Let members that diverged or are `retired` (their trial pruned) leave `progress`'s
        state: the rest are packed evenly over the devices (`layout`), in a smaller compiled size
        (a power of two rows per device) once they fit one, so no block trains only leavers."""
        roster, state, retired = progress.roster, progress.state, set(retired)
        if state is None:
            return
        row = {int(m): i for i, m in enumerate(roster.slots) if m >= 0}
        stay = [m for m in row if not roster.diverged[m] and m not in retired]
        if not stay:
            progress.state, roster.slots = None, roster.slots[:0]
            return
        if len(stay) < len(row):
            per_device = 1 << (-(-len(stay) // len(self.devices)) - 1).bit_length()
            slots = self.layout(len(stay), min(per_device * len(self.devices), len(state.seed)))
            progress.state = self._take(state, [row[stay[j]] if j >= 0 else -1 for j in slots])
            roster.slots = np.array([stay[j] if j >= 0 else -1 for j in slots])

    def pick(self, source: Progress, members: list[int], population: Population) -> Progress:
        """Members `members` of `source` (a checkpointed population), in order, as the start of
        `population`, whose members they must be: how a retried trial continues a dead worker's."""
        population.validate(self.groups)
        row = {int(m): i for i, m in enumerate(source.roster.slots) if m >= 0}
        active = [j for j, m in enumerate(members) if m in row]
        state, slots = None, np.zeros(0, np.int64)
        if active:
            slots = np.array([active[j] if j >= 0 else -1 for j in self.layout(len(active), self._rows(len(active)))])
            state = self._take(source.state, [row[members[j]] if j >= 0 else -1 for j in slots])
            for name in ("learning_rate", "seed"):
                held = np.asarray(getattr(state, name))[slots >= 0]
                if not np.array_equal(held, getattr(population, name)[slots[slots >= 0]]):
                    raise ValueError(f"checkpoint members do not match the population's {name}")
        return Progress(state, source.roster.pick(members, slots), source.curves.select(members), source.step)

    def _take(self, state: TrainState, rows: list[int]) -> TrainState:
        """Rows `rows` of a state (on the devices or the host), -1 a frozen spare row, placed on
        the devices."""
        index = np.asarray(rows)
        picked = jax.tree.map(lambda a: a[np.maximum(index, 0)], state.replace(step=None))  # None: no leaves
        return self._frozen(self.place(picked.replace(step=state.step)), index < 0)

    def _frozen(self, state: TrainState, spare: np.ndarray) -> TrainState:
        """`state` with its `spare` rows marked diverged: a block of them skips its steps."""
        mask = jax.device_put(spare, self._member_sharding()) if self._mesh is not None else spare
        return state.replace(diverged=state.diverged | mask)

    def _everyone(self, rows: dict[str, np.ndarray] | None, roster: Roster) -> dict[str, np.ndarray]:
        """A chunk's metrics for every member: the rows in training where they are; members that
        left report what they ended with (a diverged member its diverged value and error, NaN
        gradient norm and step losses; one retired healthy, NaN), their last layer statistics."""
        n, steps = len(roster.diverged), self.cfg.chunk_steps
        ended = lambda value: np.where(roster.diverged, value, np.nan).astype(np.float32)  # noqa: E731
        metrics = {
            "train_loss": ended(self.diverged_value),
            "val_loss": ended(self.diverged_value),
            "val_error": ended(self._diverged_error),
            "grad_norm": np.full(n, np.nan, np.float32),
            "step_loss": np.full((n, steps), np.nan, np.float32),
            "layer_variance": roster.layer_variance.copy(),
            "diverged": roster.diverged.copy(),
            "diverged_step": roster.diverged_step.copy(),
        }
        live = roster.slots >= 0
        for name, values in (rows or {}).items():
            metrics[name][roster.slots[live]] = values[live]
        return metrics

    @property
    def _diverged_error(self) -> float:
        return 1.0 if self.spec.task == "classification" else self.diverged_value

    def _check_memory(self, size: int) -> None:
        """Members share the host's memory on CPU; an accelerator holds its own share. Each
        device keeps its members' state and one block's activations (of a step or an
        evaluation) at a time."""
        members = max(size, 1) if self.devices[0].platform == "cpu" else -(-max(size, 1) // len(self.devices))
        data = sum(a.nbytes for a in self.arrays)
        blocks = len(self.devices) if self.devices[0].platform == "cpu" else 1
        need = members * self._member_bytes + blocks * self._block(members) * self._step_bytes + data
        devices.check_fits(need, f"a population of {max(size, 1)}", self.devices[0])

    def _rows(self, size: int) -> int:
        """Rows of a fresh state of `size` members: up to `population_size`, a multiple of the devices."""
        per_device = -(-max(size, self.population_size) // len(self.devices))
        return per_device * len(self.devices)

    def _block(self, members: int) -> int:
        """Members a device trains side by side: the largest divisor of `members` up to the config's
        `member_block` (0: 2 on CPU, all elsewhere), so blocks never need padding."""
        most = self.cfg.member_block or (2 if self.devices[0].platform == "cpu" else members)
        return max(b for b in range(1, min(most, members) + 1) if members % b == 0)

    def _member_sharding(self):
        return jax.sharding.NamedSharding(self._mesh, jax.sharding.PartitionSpec("trials"))


def train(
    trainer: Trainer,
    population: Population,
    *,
    on_chunk: Callable[[int, dict[str, np.ndarray]], str | None] | None = None,
    retired: Callable[[], Collection[int]] = tuple,
    checkpointer=None,
    initial: Progress | None = None,
) -> Result:
    """Train `population` to the end, from `initial` if given, else resuming from `checkpointer`
    when it holds a state, else from scratch. `on_chunk` sees each chunk's metrics and may return
    STOP to end training there (every member pruned, say), or PAUSE to save a checkpoint first
    (the worker was asked to stop; a retry resumes from it). After each chunk, members that
    diverged or that `retired()` names leave the compiled population (`Trainer.compact`)."""
    restored = initial or (checkpointer.restore(trainer, population) if checkpointer else None)
    progress = restored or trainer.begin(population)
    action = None
    while progress.step < trainer.cfg.steps:
        metrics = trainer.advance(progress)
        chunk = progress.step // trainer.cfg.chunk_steps
        action = on_chunk(chunk, metrics) if on_chunk else None
        if action == STOP:
            break
        trainer.compact(progress, retired())
        if checkpointer:
            checkpointer.maybe_save(chunk, progress, population, force=action == PAUSE)
        if action == PAUSE:
            break
    roster = progress.roster
    return Result(
        population=population,
        final={name: progress.curves.array(name)[:, -1] for name in METRICS},
        diverged=roster.diverged.copy(),
        diverged_step=roster.diverged_step.copy(),
        curves=progress.curves,
        layer_variance=roster.layer_variance.copy(),
        stopped=action in (STOP, PAUSE),
        paused=action == PAUSE,
    )


def _trials_mesh(devices) -> jax.sharding.Mesh:
    """A 1-D mesh over `devices` whose axis "trials" splits the population (auto sharding)."""
    return jax.make_mesh((len(devices),), ("trials",), devices=devices, axis_types=(jax.sharding.AxisType.Auto,))


def _norm(tree) -> Array:
    """Euclidean norm over all leaves of a pytree."""
    return jnp.sqrt(sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree.leaves(tree)))


def _member_keys(seed: Array) -> Array:
    """[P, 2] keys per member: one for its init, one for its data order."""
    return jax.vmap(lambda s: jax.random.split(jax.random.key(s)))(seed)
