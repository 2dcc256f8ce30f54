"""The discrete-time model of a running Flink job: flat numpy arrays over every subtask, one step at a time.

Every subtask of every vertex is one slot in flat arrays (sources first, then the rest in topological
order), so a step is a fixed number of numpy operations whatever the parallelism: no Python loop over
subtasks or vertices. That is what lets a day of a 2,000-subtask job run at one-second resolution in
seconds (see bench/sim_speed.py).

State: ``queue[j]`` is the records waiting for subtask ``j``. For a source reader it is its partitions'
pending records (Flink's ``pendingRecords``, unbounded: the lag); for any other subtask it is its input
buffer, bounded by ``buffer_seconds`` x its capacity, which is how backpressure exists.

One step of ``dt`` seconds (all vertices update together from the state at the start of the step):

1. The records offered at the sources (after shedding) join the readers' pending records, split by
   their partitions (``keyload.partition_shares``).
2. Each subtask wants to process ``want = min(queue, capacity x dt)``.
3. Backpressure: the records those would send to each downstream subtask (``demand``) must fit into its
   free buffer space; ``ratio = free / demand`` where that is below 1. An upstream vertex is held back by the
   WORST ratio among the subtasks it sends to, because a Flink subtask blocks as soon as any one output
   channel has no buffer (that is how one hot key group backpressures the whole upstream vertex); a FORWARD
   edge holds back only its paired subtask.
4. ``processed = want x throttle`` leaves the queue; ``processed x selectivity`` is split over downstream
   subtasks by the edge's shares (key groups for HASH edges) and joins their queues for the next step.

Flink's time metrics follow from it per subtask: busy = processed / (capacity x dt), backpressured = the
part of ``want`` that the throttle held back (time the subtask had input but no output buffer), idle = the
rest. Records move one hop per step, so every buffer holds about one step of its flow; the bounded buffer
is sized in seconds (default 4 s, at least 2 steps) for that reason, and is far larger than Flink's
millisecond-sized network buffers: the model is right about rates, lag and backpressure, not about
sub-second latency.

Between two events of the run loop (a decision, a checkpoint) ``advance`` takes all the steps at once while
the job flows freely: no non-source subtask holds more than ``capacity x dt`` (it processes all it holds)
and nothing is backpressured. Then the sources follow their own recursion and every other vertex is linear,
one hop per step, which costs a few operations per step on V-sized arrays and one on the (steps x subtasks)
array instead of a dozen per step on subtask-sized ones. It checks ``step``'s two conditions on the result
and declines (the run loop then steps) when a span backpressures or saturates anything.

Conservation holds by construction and is checked by the tests: for every vertex, records that arrived =
records processed + records still queued + records discarded by a restore from a checkpoint, and at the
sources offered = admitted + shed (a restore re-reads, and counts as arrived, what was read since the last
checkpoint).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from flinkscale.core.errors import InputError
from flinkscale.core.sim.keyload import FloatArray, key_group_weights, partition_shares, subtask_shares
from flinkscale.core.sim.model import SimEdge, SimPipeline, SimVertex
from flinkscale.core.snapshot import ShipStrategy

IntArray = npt.NDArray[np.int64]
# Source readers fall into groups of identical ones; up to this many groups are stepped on Python floats.
_SOURCE_GROUPS_IN_PYTHON = 8


def edge_shares(edge: SimEdge, target: SimVertex, key_group_weight: FloatArray | None) -> FloatArray:
    """Share of the edge's records that each downstream subtask receives (sums to 1; p for BROADCAST)."""
    p = target.parallelism
    strategy = edge.ship_strategy
    if strategy is ShipStrategy.HASH and key_group_weight is not None:
        return subtask_shares(key_group_weight, p)
    if strategy is ShipStrategy.BROADCAST:
        return np.ones(p)
    if strategy is ShipStrategy.GLOBAL:
        shares = np.zeros(p)
        shares[0] = 1.0
        return shares
    return np.full(p, 1.0 / p)


@dataclass(frozen=True)
class WindowMetrics:
    """Per-subtask sums over the metrics window, what a snapshot is built from."""

    seconds: float
    processed: FloatArray
    wanted: FloatArray
    admitted: float


class JobModel:
    """The mutable simulation state of one job; ``step`` advances it by ``dt`` seconds.

    Mutable on purpose (it is the hot loop); the run loop owns it and turns it into immutable snapshots.
    """

    def __init__(self, pipeline: SimPipeline, *, step_seconds: float = 1.0, buffer_seconds: float = 4.0,
                 metrics_window_seconds: float = 60.0) -> None:
        if not step_seconds > 0:
            raise InputError(f"must be > 0, got {step_seconds}", field="step")
        if buffer_seconds < 2 * step_seconds:
            raise InputError(f"must be >= 2 steps ({2 * step_seconds:g}s): records move one hop per step",
                             field="buffer_seconds")
        if metrics_window_seconds < step_seconds:
            raise InputError(f"must be >= the step ({step_seconds:g}s)", field="metrics_window")
        self.dt = step_seconds
        self.buffer_seconds = buffer_seconds
        self.window_steps = max(1, round(metrics_window_seconds / step_seconds))
        self.order = pipeline.topological_order()
        self.pipeline = pipeline
        # Key-group weights depend only on the key distribution and max parallelism: computed once.
        self._key_group_weight: dict[int, FloatArray] = {}
        for i, edge in enumerate(pipeline.edges):
            if edge.ship_strategy is ShipStrategy.HASH:
                target = pipeline.vertex(edge.target)
                self._key_group_weight[i] = key_group_weights(edge.key_distribution, target.max_parallelism)
        self.source_ids = tuple(v.id for v in pipeline.sources())
        self.sink_ids = tuple(v.id for v in pipeline.sinks())
        # Cumulative per-vertex accounting (kept over rescales).
        n_vertices = len(self.order)
        self.arrived_total = np.zeros(n_vertices)
        self.processed_total = np.zeros(n_vertices)
        # Restores from a checkpoint: in-flight records thrown away per vertex, records re-read per source.
        self.discarded_total = np.zeros(n_vertices)
        self.replayed_total = np.zeros(len(self.source_ids))
        self.source_processed_at_checkpoint = np.zeros(len(self.source_ids))
        self.admitted_total = 0.0
        self.queue = np.zeros(0)
        self._build(pipeline, queued_per_vertex=np.zeros(n_vertices))

    # --- layout ------------------------------------------------------------------------------------
    def _build(self, pipeline: SimPipeline, queued_per_vertex: FloatArray) -> None:
        """Flat arrays for the current parallelism; queued records are redistributed per vertex."""
        self.pipeline = pipeline
        self.vertices = tuple(pipeline.vertex(v.id) for v in self.order)
        index = {v.id: i for i, v in enumerate(self.vertices)}
        self.index = index
        counts = np.array([v.parallelism for v in self.vertices], dtype=np.int64)
        self.parallelism_array = counts
        starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
        self.seg_start = starts
        n = int(counts.sum())
        self.n_subtasks = n
        self.vertex_of = np.repeat(np.arange(len(self.vertices)), counts)
        capacity = np.repeat([v.capacity for v in self.vertices], counts).astype(np.float64)
        self.capacity = capacity
        self.capacity_dt = capacity * self.dt
        source_set = set(self.source_ids)
        is_source = np.repeat([v.id in source_set for v in self.vertices], counts)
        self.queue_max = np.where(is_source, np.inf, capacity * self.buffer_seconds)
        n_source_subtasks = int(counts[: len(self.source_ids)].sum())
        self.n_source_subtasks = n_source_subtasks
        # Sources come first in topological order, so source readers are queue[:n_source_subtasks].
        share = np.concatenate([partition_shares(v.partitions, v.parallelism) / len(self.source_ids)
                                for v in self.vertices[: len(self.source_ids)]])
        self.source_share = share

        channel_up: list[IntArray] = []
        channel_target: list[IntArray] = []
        channel_coef: list[FloatArray] = []
        forward_src: list[IntArray] = []
        forward_dst: list[IntArray] = []
        forward_coef: list[FloatArray] = []
        forward_hops: list[tuple[int, int, float]] = []
        out_selectivity = np.zeros(len(self.vertices))
        for i, edge in enumerate(pipeline.edges):
            u, d = index[edge.source], index[edge.target]
            up, down = self.vertices[u], self.vertices[d]
            out_selectivity[u] += edge.selectivity
            if edge.ship_strategy is ShipStrategy.FORWARD and up.parallelism == down.parallelism:
                forward_src.append(starts[u] + np.arange(up.parallelism))
                forward_dst.append(starts[d] + np.arange(down.parallelism))
                forward_coef.append(np.full(up.parallelism, edge.selectivity))
                forward_hops.append((u, d, edge.selectivity))
                continue
            shares = edge_shares(edge, down, self._key_group_weight.get(i))
            used = np.nonzero(shares > 0)[0]
            channel_up.append(np.full(len(used), u, dtype=np.int64))
            channel_target.append(starts[d] + used)
            channel_coef.append(edge.selectivity * shares[used])
        # Sinks write what they process; their records out are what they processed.
        self.out_factor = np.where(out_selectivity > 0, out_selectivity, 1.0)
        n_v = len(self.vertices)
        # One dummy channel per vertex pointing at index n (ratio 1) so every min-reduce segment is non-empty.
        up_all = np.concatenate([np.arange(n_v, dtype=np.int64), *channel_up])
        target_all = np.concatenate([np.full(n_v, n, dtype=np.int64), *channel_target])
        coef_all = np.concatenate([np.zeros(n_v), *channel_coef])
        order = np.argsort(up_all, kind="stable")
        self.ch_up = up_all[order]
        self.ch_target = target_all[order]
        self.ch_coef = coef_all[order]
        self.ch_seg = np.searchsorted(self.ch_up, np.arange(n_v)).astype(np.int64)
        self.has_forward = bool(forward_src)
        self.fw_src = np.concatenate(forward_src) if forward_src else np.zeros(0, dtype=np.int64)
        self.fw_dst = np.concatenate(forward_dst) if forward_dst else np.zeros(0, dtype=np.int64)
        self.fw_coef = np.concatenate(forward_coef) if forward_coef else np.zeros(0)
        self._ratio_ext = np.ones(n + 1)
        self._build_spans(n_v, n, forward_hops)
        # Redistribute what was queued per vertex over the new subtasks: a source's pending records by its
        # partitions (lag lives in partitions, which move to the new readers), buffers evenly.
        queue = np.zeros(n)
        for v_index, vertex in enumerate(self.vertices):
            lo, hi = starts[v_index], starts[v_index] + counts[v_index]
            if v_index < len(self.source_ids):
                queue[lo:hi] = queued_per_vertex[v_index] * partition_shares(vertex.partitions, vertex.parallelism)
            else:
                queue[lo:hi] = queued_per_vertex[v_index] / vertex.parallelism
        self.queue = queue
        self.reset_metrics()

    def _build_spans(self, n_vertices: int, n_subtasks: int, forward_hops: list[tuple[int, int, float]]) -> None:
        """What ``advance`` needs for this layout: the vertex-level hop (records a vertex processes in a step
        -> records each downstream vertex receives) and the forward edges grouped by how many forward hops
        lie before their upstream subtask (a forward chain passes one subtask's records on subtask by subtask).
        """
        real = self.ch_target < n_subtasks  # not the dummy channels
        # A channel carries its coefficient times what its upstream vertex processed; a forward edge carries its
        # selectivity times that (each subtask pair carries its own part).
        ups = np.concatenate([self.ch_up[real], np.array([u for u, _, _ in forward_hops], dtype=np.int64)])
        downs = np.concatenate([self.vertex_of[self.ch_target[real]],
                                np.array([d for _, d, _ in forward_hops], dtype=np.int64)])
        coefs = np.concatenate([self.ch_coef[real], np.array([c for _, _, c in forward_hops], dtype=np.float64)])
        pairs, inverse = np.unique(ups * n_vertices + downs, return_inverse=True)
        self.hop_up = pairs // n_vertices
        self.hop_down = pairs % n_vertices
        self.hop_coef = np.bincount(inverse.reshape(-1), coefs, minlength=len(pairs))
        # Exactly one hop into every non-source vertex (a chain, a tree): (upstream, coefficient) per non-source
        # vertex in vertex order, for a step that is a gather instead of a sum per vertex; else None.
        by_down = np.argsort(self.hop_down, kind="stable")
        n_sources = len(self.source_ids)
        self.hop_direct: tuple[IntArray, FloatArray] | None = None
        if np.array_equal(self.hop_down[by_down], np.arange(n_sources, n_vertices)):
            self.hop_direct = (self.hop_up[by_down], np.asarray(self.hop_coef[by_down], dtype=np.float64))
        # Vertex levels (longest path from a source): a level's flows follow from the levels before it, for all
        # the steps of a span at once; a shallow graph is propagated level by level, a deep one step by step.
        level = np.zeros(n_vertices, dtype=np.int64)
        for up, down in zip(self.hop_up.tolist(), self.hop_down.tolist(), strict=True):  # sorted by upstream
            level[down] = max(int(level[down]), int(level[up]) + 1)
        hop_level = level[self.hop_down]
        self.hop_levels = [(self.hop_up[hop_level == k], self.hop_down[hop_level == k], self.hop_coef[hop_level == k])
                           for k in range(1, int(level.max()) + 1)]
        self.span_ch_up = self.ch_up[real]
        self.span_ch_target = self.ch_target[real]
        self.span_ch_coef = self.ch_coef[real]
        # When every non-source subtask has exactly one channel in (no forward edge, no subtask fed twice or
        # never), a span's arrivals are one gather of upstream columns in subtask order: (upstream vertex,
        # coefficient) per non-source subtask. Else None: arrivals are summed per subtask (np.bincount).
        by_target = np.argsort(self.span_ch_target, kind="stable")
        self.span_direct: tuple[IntArray, FloatArray] | None = None
        if np.array_equal(self.span_ch_target[by_target], np.arange(self.n_source_subtasks, n_subtasks)):
            self.span_direct = (self.span_ch_up[by_target], self.span_ch_coef[by_target])
        depth = np.zeros(n_subtasks, dtype=np.int64)
        order = np.argsort(self.fw_src, kind="stable")  # upstream subtasks precede downstream ones (topological)
        for k in order.tolist():
            src, dst = int(self.fw_src[k]), int(self.fw_dst[k])
            depth[dst] = max(depth[dst], depth[src] + 1)
        self.fw_levels: list[tuple[IntArray, IntArray, FloatArray]] = []
        src_depth = depth[self.fw_src]
        for level in np.unique(src_depth).tolist():
            chosen = src_depth == level
            self.fw_levels.append((self.fw_src[chosen], self.fw_dst[chosen], self.fw_coef[chosen]))
        self._span_index: dict[int, IntArray] = {}
        self._span_buffers: dict[int, FloatArray] = {}

    def rescale(self, parallelism: Mapping[str, int], restore_from_checkpoint: bool = False) -> None:
        """New parallelism. From a savepoint (default) nothing is lost or repeated: buffered records move to the
        new subtasks. From the last checkpoint, in-flight records are dropped and every record the sources read
        since that checkpoint is read again (the sources rewind to the checkpointed offsets)."""
        if restore_from_checkpoint:
            self.restore_from_checkpoint()
        queued = self.queued_per_vertex()
        self._build(self.pipeline.with_parallelism(parallelism), queued)

    def mark_checkpoint(self) -> None:
        """A checkpoint completed: remember how far the sources had read."""
        self.source_processed_at_checkpoint = self.processed_total[: len(self.source_ids)].copy()

    def restore_from_checkpoint(self) -> None:
        n_sources = len(self.source_ids)
        replay = self.processed_total[:n_sources] - self.source_processed_at_checkpoint
        queued = self.queued_per_vertex()
        self.discarded_total[n_sources:] += queued[n_sources:]
        self.queue[self.n_source_subtasks:] = 0.0
        for i, vertex in enumerate(self.vertices[:n_sources]):
            lo, hi = int(self.seg_start[i]), int(self.seg_start[i] + self.parallelism_array[i])
            self.queue[lo:hi] += replay[i] * partition_shares(vertex.partitions, vertex.parallelism)
        self.replayed_total += replay
        # The restored state IS the checkpoint: a second restore before the next checkpoint rewinds to it again.
        self.source_processed_at_checkpoint = self.processed_total[:n_sources].copy()

    def reset_metrics(self) -> None:
        """Forget the metrics window (Flink's meters restart with the tasks)."""
        self.ring_processed = np.zeros((self.window_steps, self.n_subtasks))
        self.ring_wanted = np.zeros((self.window_steps, self.n_subtasks))
        self.ring_admitted = np.zeros(self.window_steps)
        self.ring_index = 0
        self.ring_filled = 0

    # --- the step ----------------------------------------------------------------------------------
    def admit(self, records: float) -> None:
        """Records offered to the sources (after shedding) join the readers' pending records."""
        self.queue[: self.n_source_subtasks] += records * self.source_share
        self.admitted_total += records

    def step(self, admitted: float, processing: bool = True) -> None:
        """Advance ``dt``: admit ``admitted`` records at the sources, then process (unless paused)."""
        self.admit(admitted)
        row = self.ring_index
        self.ring_admitted[row] = admitted
        self.ring_index = (row + 1) % self.window_steps
        self.ring_filled = min(self.ring_filled + 1, self.window_steps)
        if not processing:
            self.ring_processed[row] = 0.0
            self.ring_wanted[row] = 0.0
            return
        queue = self.queue
        want = np.minimum(queue, self.capacity_dt)
        want_out = np.add.reduceat(want, self.seg_start)
        demand = np.bincount(self.ch_target, want_out[self.ch_up] * self.ch_coef, minlength=self.n_subtasks + 1)
        if self.has_forward:
            demand[: self.n_subtasks] += np.bincount(self.fw_dst, want[self.fw_src] * self.fw_coef,
                                                     minlength=self.n_subtasks)
        free = self.queue_max - queue
        demand = demand[: self.n_subtasks]
        if bool(np.all(demand <= free)):
            processed = want
        else:
            # A buffer left over-full by a scale-down has no room at all (not negative room).
            np.maximum(free, 0.0, out=free)
            ratio = self._ratio_ext
            ratio[: self.n_subtasks] = 1.0
            np.divide(free, demand, out=ratio[: self.n_subtasks], where=demand > free)
            throttle = np.minimum.reduceat(ratio[self.ch_target], self.ch_seg)[self.vertex_of]
            if self.has_forward:
                np.minimum.at(throttle, self.fw_src, ratio[self.fw_dst])
            processed = want * throttle
        queue -= processed
        out = np.add.reduceat(processed, self.seg_start)
        arrivals = np.bincount(self.ch_target, out[self.ch_up] * self.ch_coef, minlength=self.n_subtasks + 1)
        arrivals = arrivals[: self.n_subtasks]
        if self.has_forward:
            arrivals += np.bincount(self.fw_dst, processed[self.fw_src] * self.fw_coef, minlength=self.n_subtasks)
        queue += arrivals
        self.processed_total += out
        self.arrived_total += np.add.reduceat(arrivals, self.seg_start)
        self.ring_processed[row] = processed
        self.ring_wanted[row] = want

    def advance(self, admitted: FloatArray) -> FloatArray | None:
        """Advance ``len(admitted)`` steps at once, ``admitted[k]`` records offered in step k, when no buffer
        fills in any of them; returns the sources' pending records after each step, or None (nothing changed)
        when some step would need ``step``'s backpressure path.

        The fast path is the free-flowing job: every non-source subtask processes all it holds in each step
        (its buffer holds at most ``capacity x dt``) and nothing is backpressured (what arrives fits in the free
        buffer). Then ``step`` reduces to: the sources follow their own recursion (pending += admitted x share;
        processed = min(pending, capacity x dt), Lindley's), computed here step by step with the very same
        operations on the source readers only, and every other vertex is linear and delayed by one hop: the
        records a vertex processes in step k+1 are ``sum over input edges of coefficient x records its upstream
        vertex processed in step k`` (a V-sized product per step), and the per-subtask split of those records
        follows from the edge shares for all steps in one operation (forward edges subtask by subtask). Both
        conditions are then checked on the result, exactly as ``step`` tests them, and the state is committed
        only if they held in every step: a span that backpressures or saturates a vertex is stepped instead.

        The results equal ``step``'s up to the order of floating-point additions (per-vertex sums are formed
        from the hop's coefficients rather than from each subtask's share); tests/unit/sim check the two
        against each other on random jobs."""
        n = len(admitted)
        if n == 0:
            return np.zeros(0)
        ns, n_v = self.n_source_subtasks, len(self.vertices)
        n_src_v = len(self.source_ids)
        # Row k < n: processed in step k; row n: the queue after the span. Every element is written below.
        processed = self._span_buffer(n)
        source_queue, pending = self._advance_sources(admitted, processed)
        out = np.zeros((n + 1, n_v))  # records processed per vertex in each step (row n: the queue after)
        out[:n, :n_src_v] = np.add.reduceat(processed[:n, :ns], self.seg_start[:n_src_v], axis=1)
        out[0, n_src_v:] = np.add.reduceat(self.queue, self.seg_start)[n_src_v:]
        if len(self.hop_levels) < n:
            by_vertex = out[1:].T  # a view: rows are vertices (np.add.at adds a vertex's inputs up)
            for up, down, coef in self.hop_levels:
                np.add.at(by_vertex, down, (out[:-1, up] * coef).T)
        elif self.hop_direct is not None:  # one hop into each vertex: its value alone (0.0 + x is x)
            direct_up, direct_coef = self.hop_direct
            for k in range(n):
                np.multiply(out[k, direct_up], direct_coef, out=out[k + 1, n_src_v:])
        else:
            hop_up, hop_down, hop_coef = self.hop_up, self.hop_down, self.hop_coef
            for k in range(n):
                out[k + 1, n_src_v:] = np.bincount(hop_down, out[k, hop_up] * hop_coef, minlength=n_v)[n_src_v:]
        # Per subtask: row k + 1 holds what arrives in step k (a non-source subtask processes it in step k + 1).
        processed[0, ns:] = self.queue[ns:]
        self._span_arrivals(out[:n], processed[1:, ns:])
        by_subtask = processed[1:].T  # a view: rows are subtasks (np.add.at adds repeated targets up)
        for src, dst, coef in self.fw_levels:
            np.add.at(by_subtask, dst, (processed[:-1, src] * coef).T)
        held = processed[:, ns:]
        if not self._flows_freely(held):
            return None
        self.queue[:ns] = source_queue
        self.queue[ns:] = held[n]
        for records in admitted.tolist():
            self.admitted_total += records
        self.processed_total += out[:n].sum(axis=0)
        self.arrived_total[n_src_v:] += out[1:, n_src_v:].sum(axis=0)
        window = self.window_steps
        last = processed[max(0, n - window):n]
        rows = (self.ring_index + np.arange(n - len(last), n)) % window
        self.ring_processed[rows] = last
        self.ring_wanted[rows] = last  # nothing held back: everything wanted was processed
        self.ring_admitted[rows] = admitted[n - len(last):]
        self.ring_index = (self.ring_index + n) % window
        self.ring_filled = min(self.ring_filled + n, window)
        return pending

    def _span_buffer(self, n: int) -> FloatArray:
        """An (n + 1, subtasks) array for ``advance``'s per-subtask flows, kept for the next span of ``n`` steps
        (the spans between decisions have a few lengths): a fresh one of a 1,000-vertex job is megabytes whose
        pages the kernel has to zero at every span. Its contents are copied out, never referenced."""
        buffer = self._span_buffers.get(n)
        if buffer is None:
            buffer = np.empty((n + 1, self.n_subtasks))
            self._span_buffers[n] = buffer
        return buffer

    def _span_arrivals(self, out: FloatArray, arrivals: FloatArray) -> None:
        """Into ``arrivals`` (steps, non-source subtasks): what each non-source subtask receives in each step of a
        span over the channels, from ``out`` (steps, vertices), what each vertex processed.

        Summed per subtask in channel order (np.bincount); a subtask with one channel in receives that channel's
        value alone (``0.0 + x`` is ``x`` for the non-negative records here), so when each has exactly one
        (``span_direct``) the gather is written straight into place. ``np.take`` gathers columns several times
        faster than fancy indexing on axis 1."""
        if self.span_direct is not None:
            up, coef = self.span_direct
            np.multiply(np.take(out, up, axis=1), coef, out=arrivals)
            return
        n, n_sub = len(out), self.n_subtasks
        index = self._span_index.get(n)
        if index is None:
            index = (np.arange(n)[:, None] * n_sub + self.span_ch_target[None, :]).reshape(-1)
            self._span_index[n] = index
        summed = np.bincount(index, (np.take(out, self.span_ch_up, axis=1) * self.span_ch_coef).reshape(-1),
                             minlength=n * n_sub).reshape(n, n_sub)
        arrivals[:] = summed[:, self.n_source_subtasks:]

    def _flows_freely(self, held: FloatArray) -> bool:
        """``step``'s two conditions over a span, ``held[k]`` what the non-source subtasks hold at step k (row n:
        after the span): each processes all it holds (``held[k] <= capacity x dt``, k < n) and what arrives fits
        in its free buffer (``held[k + 1] <= queue_max - held[k]``).

        Tested on each subtask's largest value (a max is exact). When even the last row is within ``capacity x
        dt`` the second condition holds without testing it: ``queue_max`` is ``capacity x buffer_seconds`` with
        ``buffer_seconds >= 2 dt``, so ``queue_max >= 2 x capacity x dt`` in doubles too, and rounding is
        monotone, so ``queue_max - held[k] >= capacity x dt >= held[k + 1]``."""
        ns, n = self.n_source_subtasks, len(held) - 1
        cap = self.capacity_dt[ns:]
        if bool(np.all(held.max(axis=0) <= cap)):
            return True
        return (bool(np.all(held[:n].max(axis=0) <= cap))
                and bool(np.all(held[1:] <= self.queue_max[ns:] - held[:n])))

    def _advance_sources(self, admitted: FloatArray, processed: FloatArray) -> tuple[FloatArray, FloatArray]:
        """The source readers over a span without backpressure, with ``step``'s own operations: pending +=
        admitted x share; processed = min(pending, capacity x dt) (into ``processed[:n, :readers]``); pending
        -= processed. Returns the readers' pending records after the span and their sum after each step.

        Readers with the same share, capacity and pending records behave identically (most layouts have one
        or two such groups), so the recursion runs once per group on Python floats (IEEE doubles, the same
        arithmetic as numpy's) and is spread back over the readers."""
        ns, n = self.n_source_subtasks, len(admitted)
        records = admitted.tolist()
        keys = np.stack([self.source_share, self.capacity_dt[:ns], self.queue[:ns]], axis=1)
        if bool(np.all(keys == keys[0])):  # the usual case, and much cheaper to see than to group
            groups, group_of = keys[:1], np.zeros(ns, dtype=np.int64)
        else:
            groups, group_of = np.unique(keys, axis=0, return_inverse=True)
        if len(groups) > _SOURCE_GROUPS_IN_PYTHON:
            queue = self.queue[:ns].copy()
            cap, share = self.capacity_dt[:ns], self.source_share
            pending = np.empty(n)
            for k, offered in enumerate(records):
                queue += offered * share
                done = np.minimum(queue, cap)
                queue -= done
                processed[k, :ns] = done
                pending[k] = queue.sum()
            return queue, pending
        shares, caps, queues = groups[:, 0].tolist(), groups[:, 1].tolist(), groups[:, 2].tolist()
        done_rows: list[list[float]] = []
        queue_rows: list[list[float]] = []
        for offered in records:
            row = []
            for g, (share, cap) in enumerate(zip(shares, caps, strict=True)):
                queue = queues[g] + offered * share
                done = queue if queue <= cap else cap
                queues[g] = queue - done
                row.append(done)
            done_rows.append(row)
            queue_rows.append(list(queues))
        index = group_of.reshape(-1)
        processed[:n, :ns] = np.asarray(done_rows)[:, index]
        per_reader = np.asarray(queue_rows)[:, index]
        # Row by row numpy sums a contiguous row exactly as it sums that row alone: the same pending as step's.
        sums: FloatArray = per_reader.sum(axis=1)
        return per_reader[-1].copy(), sums

    def downtime_step(self, admitted: float) -> None:
        """A step while the job restarts: the sources' partitions keep filling, nothing runs or is measured."""
        self.admit(admitted)

    # --- reading the state -------------------------------------------------------------------------
    def source_pending(self) -> float:
        return float(self.queue[: self.n_source_subtasks].sum())

    def queued_per_vertex(self) -> FloatArray:
        queued: FloatArray = np.add.reduceat(self.queue, self.seg_start)
        return queued

    def window(self) -> WindowMetrics | None:
        """Per-subtask sums over the filled part of the metrics window (None right after a restart)."""
        if self.ring_filled == 0:
            return None
        return WindowMetrics(seconds=self.ring_filled * self.dt,
                             processed=self.ring_processed.sum(axis=0),
                             wanted=self.ring_wanted.sum(axis=0),
                             admitted=float(self.ring_admitted.sum()))

    def parallelism(self) -> dict[str, int]:
        return {v.id: v.parallelism for v in self.vertices}

    def arrived_per_vertex(self) -> dict[str, float]:
        """Records that ever arrived at each vertex (admitted plus replayed records for the sources)."""
        arrived = {v.id: float(self.arrived_total[i]) for i, v in enumerate(self.vertices)}
        for i, sid in enumerate(self.source_ids):
            arrived[sid] = self.admitted_total / len(self.source_ids) + float(self.replayed_total[i])
        return arrived

    def discarded_per_vertex(self) -> dict[str, float]:
        """In-flight records dropped by restores from a checkpoint (they are read again at the sources)."""
        return {v.id: float(self.discarded_total[i]) for i, v in enumerate(self.vertices)}

    def processed_per_vertex(self) -> dict[str, float]:
        return {v.id: float(self.processed_total[i]) for i, v in enumerate(self.vertices)}
