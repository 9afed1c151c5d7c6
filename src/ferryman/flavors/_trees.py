"""A compiled NumPy path for histogram gradient boosting classifiers.

``HistGradientBoostingClassifier.predict_proba`` calls each tree's Cython predictor in
turn: for the default hundred trees that is a hundred calls, each entering an OpenMP
region, about 0.6 ms for one row however small the trees. :func:`compile_proba` lays
every tree's nodes out in flat arrays and walks all trees for all rows at once, then
adds the leaf values tree by tree in scikit-learn's order, so the raw scores are the
same floating-point numbers, not merely close (about 17 x faster on one row and 3 x on
32 on the breast-cancer model of ``bench/serving``).

Two walks, the same arithmetic: a batch of a few rows decides every node's direction for
each row at once (one comparison over all nodes) and then only follows pointers, about a
dozen NumPy calls in all; a bigger batch steps all trees one level at a time, comparing
only the nodes on its path (see :class:`_Forest`).

The walk follows scikit-learn's rule at each split: a missing value (NaN) goes to the
side the node learned for missing values, anything else goes left when ``x <=
threshold``. Leaves point to themselves, so rows that reach a leaf early stay there
while deeper trees finish. Categorical splits are not compiled: a model with
categorical features keeps scikit-learn's own predictor, as does any model whose
compiled function does not reproduce ``predict_proba`` exactly on a probe batch built
from its own thresholds (see :func:`_probe`). A batch of more than
``MAX_CELLS / trees`` rows also goes to scikit-learn: the walk's arrays grow with rows x
trees, and such a batch amortises scikit-learn's per-call cost anyway.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ferryman.flavors._linear import ProbaFunction

#: Random rows added to the probe built from the thresholds.
_PROBE_RANDOM_ROWS = 64

#: Most splits whose thresholds the probe tries (a sample of them beyond that).
_PROBE_SPLITS = 2_000

#: Largest rows x nodes decided all at once (:meth:`_Forest.raw`): below it, comparing every
#: node costs less than a NumPy call per level. Measured on the breast-cancer model of
#: ``bench/serving`` (100 trees, 4,630 nodes, 17 levels), level walk -> node walk to the
#: raw scores: 1 row 115 -> 31 µs, 8 rows 175 -> 124 µs; 10 rows 193 against 235.
SMALL_CELLS = 40_000

#: Largest rows x trees walked at once (each step's arrays hold that many entries);
#: bigger batches go to scikit-learn, whose per-call cost they amortise anyway.
MAX_CELLS = 1 << 21


def compile_proba(estimator: Any) -> ProbaFunction | None:
    """Return a NumPy function equal to ``estimator.predict_proba``, or ``None``.

    Supported: a fitted ``HistGradientBoostingClassifier`` (binary or multiclass) with
    numerical features only, called on a 2-D float64 array of its features in
    training order.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    if type(estimator) is not HistGradientBoostingClassifier:
        return None
    categorical = getattr(estimator, "is_categorical_", None)
    if categorical is not None and bool(np.any(categorical)):
        return None
    try:
        predictors = estimator._predictors
        baseline = np.asarray(estimator._baseline_prediction, dtype=np.float64)
        link = estimator._loss.predict_proba
        features = int(estimator.n_features_in_)
    except AttributeError:  # a scikit-learn whose internals moved
        return None
    trees = [tree for iteration in predictors for tree in iteration]
    try:
        if not trees or any(bool(np.any(tree.nodes["is_categorical"])) for tree in trees):
            return None
        forest = _Forest(trees, baseline, features)
    except (KeyError, ValueError, IndexError):  # node records of another layout
        return None
    most_rows = max(1, MAX_CELLS // len(trees))

    def proba(X: np.ndarray) -> np.ndarray:
        if X.ndim != 2 or X.shape[1] != features or not 0 < len(X) <= most_rows:
            # scikit-learn's own error message, or its predictor for a big batch.
            return np.asarray(estimator.predict_proba(X))
        return np.asarray(link(forest.raw(X)))

    try:
        reproduces = _reproduces(estimator, forest, link, _probe(trees, features), most_rows)
    except Exception:  # the compiled path is an optimisation: anything odd keeps scikit-learn
        return None
    return proba if reproduces else None


class _Forest:
    """Every tree's nodes in flat arrays, walked level by level for all trees at once.

    Node ``i`` of the concatenated trees lives at slots ``2i`` (its left child) and
    ``2i + 1`` (its right child) of ``children``, which hold child *slots*, so one step
    is ``slot = children[slot + goes_right]``; the feature, threshold and value arrays
    are laid out the same way, both slots of a node holding its values.

    The level walk holds one row of slots per tree, the deepest trees first: level ``L``
    steps only the first ``active[L]`` trees (those deeper than ``L``), a contiguous
    block, so a forest of mostly shallow trees costs its trees' summed depth, not trees
    times the deepest one (about 0.6 of it for a typical gradient-boosting model).

    A batch of at most ``SMALL_CELLS / nodes`` rows takes the node walk instead: for each
    row, every node's next node (``next_node``: its left or right child, a leaf itself)
    in three NumPy calls over all nodes, then one ``take`` per level from the roots. It
    compares nodes off the path too, which is cheap for a few rows, and replaces about
    eight NumPy calls per level with one; a one-row call is dominated by the calls'
    fixed cost, and more so with the caches cold between requests.
    """

    def __init__(self, trees: list[Any], baseline: np.ndarray, features: int) -> None:
        sizes = [len(tree.nodes) for tree in trees]
        starts = np.cumsum([0, *sizes[:-1]])
        nodes = np.concatenate([tree.nodes for tree in trees])
        index = np.arange(len(nodes))
        offset = np.repeat(starts, sizes)
        leaf = nodes["is_leaf"].astype(bool)
        # One entry per node, trees in scikit-learn's order: the node walk's arrays.
        self.nodes = len(nodes)
        self.node_left = np.where(leaf, index, nodes["left"].astype(np.intp) + offset)
        self.node_right = np.where(leaf, index, nodes["right"].astype(np.intp) + offset)
        self.node_feature = np.where(leaf, 0, nodes["feature_idx"]).astype(np.intp)
        self.node_threshold = np.where(leaf, np.inf, nodes["num_threshold"])
        # NaN compares false, so it would go left; these nodes send it right instead.
        self.node_nan_right = ~leaf & ~nodes["missing_go_to_left"].astype(bool)
        self.node_value = nodes["value"].astype(np.float64)
        self.node_roots = starts.astype(np.intp)[:, None]
        # The level walk's: each node's values in both of its slots.
        self.feature = np.repeat(self.node_feature, 2)
        self.threshold = np.repeat(self.node_threshold, 2)
        self.nan_right = np.repeat(self.node_nan_right, 2)
        self.value = np.repeat(self.node_value, 2)
        self.children = np.empty(2 * len(nodes), dtype=np.intp)
        self.children[0::2] = 2 * self.node_left
        self.children[1::2] = 2 * self.node_right
        depths = np.array([int(tree.nodes["depth"].max()) for tree in trees])
        self.depth = int(depths.max())
        #: Trees by decreasing depth (stable), and where each lands back in scikit-learn's order.
        self.order = np.argsort(-depths, kind="stable")
        self.roots = (2 * starts.astype(np.intp))[self.order][:, None]
        self.active = [int(np.count_nonzero(depths > level)) for level in range(self.depth)]
        self.baseline = baseline.reshape(-1)
        self.per_iteration = len(self.baseline)
        self.features = features

    def raw(self, X: np.ndarray) -> np.ndarray:
        """Raw scores, shape ``(rows, trees per iteration)``, as scikit-learn adds them."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        if len(X) * self.nodes <= SMALL_CELLS:
            return self.add_up(self.node_walk(X))
        return self.add_up(self.level_walk(X))

    def node_walk(self, X: np.ndarray) -> np.ndarray:
        """Each tree's leaf value for each row, shape ``(trees, rows)``, deciding all nodes."""
        rows = len(X)
        x = X.take(self.node_feature, axis=1)  # (rows, nodes): each node's feature value
        right = x > self.node_threshold
        if np.isnan(X).any():
            right |= np.isnan(x) & self.node_nan_right
        next_node = np.where(right, self.node_right, self.node_left)
        if rows == 1:  # four NumPy calls fewer than below: about 22 against 27 µs
            node = self.node_roots  # (trees, 1)
            for _ in range(self.depth):
                node = next_node.take(node)
            return self.node_value.take(node)
        # Row r's copy of the forest starts at r x nodes of the flattened next nodes.
        offsets = np.arange(0, rows * self.nodes, self.nodes, dtype=np.intp)
        next_node += offsets[:, None]
        flat = next_node.reshape(-1)
        node = self.node_roots + offsets  # (trees, rows)
        for _ in range(self.depth):
            node = flat.take(node)
        return self.node_value.take(node - offsets)

    def level_walk(self, X: np.ndarray) -> np.ndarray:
        """Each tree's leaf value for each row, shape ``(trees, rows)``, level by level."""
        rows = len(X)
        flat = X.reshape(-1)
        row_start = np.arange(rows, dtype=np.intp) * self.features
        slot = np.repeat(self.roots, rows, axis=1)  # (trees, rows), deepest trees first
        feature, threshold, children = self.feature, self.threshold, self.children
        if np.isnan(flat).any():
            nan_right = self.nan_right
            for n in self.active:
                at = slot[:n]
                x = flat.take(row_start + feature.take(at))
                goes_right = x > threshold.take(at)
                goes_right |= np.isnan(x) & nan_right.take(at)
                slot[:n] = children.take(at + goes_right)
        else:
            for n in self.active:
                at = slot[:n]
                x = flat.take(row_start + feature.take(at))
                slot[:n] = children.take(at + (x > threshold.take(at)))
        leaves = np.empty((len(slot), rows))
        leaves[self.order] = self.value.take(slot)  # back in scikit-learn's tree order
        return leaves

    def add_up(self, leaves: np.ndarray) -> np.ndarray:
        """Raw scores from the leaf values ``(trees, rows)``, in scikit-learn's order."""
        k = self.per_iteration
        trees, rows = leaves.shape
        # baseline, then each iteration's tree added in turn: cumsum adds sequentially.
        terms = np.empty((trees // k + 1, k, rows))
        terms[0] = self.baseline[:, None]
        terms[1:] = leaves.reshape(-1, k, rows)
        return np.asarray(np.cumsum(terms, axis=0)[-1].T)


def _reproduces(
    estimator: Any, forest: _Forest, link: ProbaFunction, probe: np.ndarray, chunk: int
) -> bool:
    """Whether both walks give scikit-learn's probabilities exactly on ``probe``.

    Each walk takes the largest batches it is given: ``chunk`` rows at a time for the
    level walk, ``SMALL_CELLS / nodes`` for the node walk (and its one-row case alone),
    which a forest too big for it never takes.
    """
    expected = estimator.predict_proba(probe)
    small = SMALL_CELLS // forest.nodes
    walks = [(forest.level_walk, chunk)] + [(forest.node_walk, small)] * (small > 0)
    for walk, size in walks:
        got = np.concatenate(
            [
                link(forest.add_up(walk(np.ascontiguousarray(probe[i : i + size]))))
                for i in range(0, len(probe), size)
            ]
        )
        if got.shape != expected.shape or not np.array_equal(got, expected):
            return False
    if not small:
        return True
    one = link(forest.add_up(forest.node_walk(np.ascontiguousarray(probe[:1]))))
    return bool(np.array_equal(one, expected[:1]))


def _probe(trees: list[Any], features: int) -> np.ndarray:
    """Rows at the splits' boundaries and beyond the data.

    For each split (or a sample of :data:`_PROBE_SPLITS`), a random row with the split's
    feature set to the threshold exactly and to the next float above it; rows with one
    feature NaN, +inf or -inf; and random rows spanning each feature's thresholds.
    """
    nodes = np.concatenate([tree.nodes for tree in trees])
    splits = nodes[~nodes["is_leaf"].astype(bool)]
    rng = np.random.default_rng(0)
    if len(splits) > _PROBE_SPLITS:
        splits = splits[rng.choice(len(splits), size=_PROBE_SPLITS, replace=False)]
    low = np.full(features, -1.0)
    high = np.full(features, 1.0)
    for f in range(features):
        used = splits["num_threshold"][splits["feature_idx"] == f]
        used = used[np.isfinite(used)]
        if len(used):
            low[f], high[f] = used.min(), used.max()
    random_rows = rng.uniform(low, high, size=(_PROBE_RANDOM_ROWS, features))
    rows = [random_rows]
    for feature, threshold in zip(splits["feature_idx"], splits["num_threshold"], strict=True):
        for value in (threshold, np.nextafter(threshold, np.inf)):
            row = random_rows[len(rows) % _PROBE_RANDOM_ROWS].copy()
            row[feature] = value
            rows.append(row[None, :])
    special = np.repeat(random_rows[:3], features, axis=0)
    for i, value in enumerate((np.nan, np.inf, -np.inf)):
        block = special[i * features : (i + 1) * features]
        block[np.arange(features), np.arange(features)] = value
    rows.append(special)
    return np.concatenate(rows)
