"""From embeddings to findings: the 2-D map, likely label errors, near-duplicates and outliers.

Plain numpy in, plain records out (``core.doctor.report``). scikit-learn and cleanlab (the
``doctor`` extra) are imported here at the top: only the doctor imports this module.

* The map: PCA to at most 50 dimensions, then t-SNE (PCA alone for a handful of images).
* Label errors: out-of-sample class probabilities from a cross-validated linear classifier on the
  embeddings (standardised, PCA-reduced, logistic regression), ranked by confident learning
  (``cleanlab.filter.find_label_issues``, by self-confidence).
* Near-duplicates: identical contents, or embeddings nearly parallel AND perceptual signatures nearly
  equal (the network alone can call two different pictures of one thing twins; a 16x16 signature
  alone, two simple pictures of different things).
* Outliers: low density, the mean distance to the nearest neighbours relative to a typical image's,
  in the embeddings and in the perceptual signatures (an image unusual in either view).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from cleanlab.filter import find_label_issues
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.manifold import TSNE
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from core.doctor.report import LabelIssue, NearDuplicate, Outlier

__all__ = ["project_2d", "out_of_sample_probabilities", "label_issues", "near_duplicates", "outliers",
           "unit_rows", "MAP_DIMS", "FOLDS", "EMBEDDING_SIMILARITY", "SIGNATURE_SIMILARITY", "OUTLIER_NEIGHBOURS"]

MAP_DIMS = 50  # PCA before t-SNE (the usual recipe: denoises and speeds it up)
TSNE_MIN_IMAGES = 30  # fewer: PCA alone (t-SNE's perplexity needs neighbours to speak of)
CLASSIFIER_DIMS = 64  # PCA before the linear classifier
CLASSIFIER_C = 0.1  # inverse regularisation strength of the logistic regression (features standardised)
FOLDS = 5
EMBEDDING_SIMILARITY = 0.85  # cosine of centred embeddings, for a near-duplicate: the network agrees
SIGNATURE_SIMILARITY = 0.985  # cosine of perceptual signatures, for a near-duplicate: the picture is the same
DUPLICATE_NEIGHBOURS = 5
OUTLIER_NEIGHBOURS = 15
OUTLIER_SHARE = 0.05  # outliers listed: the top 5% of the images, at least OUTLIER_MIN
OUTLIER_MIN = 20
OUTLIER_MOST = 0.10  # never more than a tenth of a small folder: 60 images list 6, not 20


def unit_rows(vectors: np.ndarray, *, centre: bool = True) -> np.ndarray:
    """Rows scaled to unit length (after subtracting the mean row when ``centre``); zero rows stay zero."""
    data = np.asarray(vectors, dtype=np.float64)
    if centre and len(data):
        data = data - data.mean(axis=0)
    norms = np.linalg.norm(data, axis=1, keepdims=True)
    return np.divide(data, norms, out=np.zeros_like(data), where=norms > 1e-12)


# -- the map ----------------------------------------------------------------------------------------


def project_2d(vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    """[N, 2] float32 map coordinates, scaled into [-1, 1]; the same input and seed give the same map."""
    data = np.asarray(vectors, dtype=np.float64)
    n = len(data)
    if n < 2 or data.ndim != 2 or data.shape[1] == 0:
        return np.zeros((n, 2), np.float32)
    reduced = _pca(data, min(MAP_DIMS, n - 1, data.shape[1]), seed)
    if n >= TSNE_MIN_IMAGES and reduced.shape[1] >= 2:
        perplexity = min(30.0, (n - 1) / 3)
        points = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
                      random_state=seed).fit_transform(reduced)
    else:
        points = reduced[:, :2]
    if points.shape[1] < 2:
        points = np.hstack([points, np.zeros((n, 2 - points.shape[1]))])
    points = points - points.mean(axis=0)
    scale = float(np.abs(points).max())
    return (points / scale if scale > 0 else points).astype(np.float32)


def _pca(data: np.ndarray, dims: int, seed: int) -> np.ndarray:
    if dims < 1:
        return np.zeros((len(data), 0))
    return PCA(n_components=dims, random_state=seed).fit_transform(data)


# -- label errors -------------------------------------------------------------------------------------


def out_of_sample_probabilities(vectors: np.ndarray, labels: np.ndarray, n_classes: int, *, seed: int = 0,
                                folds: int = FOLDS) -> np.ndarray:
    """[N, n_classes] probabilities, each row from a classifier that never saw that image.

    Cross-validated (stratified) logistic regression on standardised, PCA-reduced embeddings. The
    folds drop to the smallest class's size (at least 2); images of classes smaller than that cannot
    be judged and keep all their probability on their own class.
    """
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.zeros((len(labels), n_classes))
    probs[np.arange(len(labels)), labels] = 1.0
    counts = np.bincount(labels, minlength=n_classes)
    judged_classes = np.flatnonzero(counts >= 2)
    if len(judged_classes) < 2:
        return probs
    splits = int(min(folds, counts[judged_classes].min()))
    judged_classes = judged_classes[counts[judged_classes] >= splits]
    rows = np.flatnonzero(np.isin(labels, judged_classes))
    if len(judged_classes) < 2:
        return probs
    local = np.searchsorted(judged_classes, labels[rows])  # 0..len(judged_classes)-1
    data = np.asarray(vectors, dtype=np.float64)[rows]
    dims = max(1, min(CLASSIFIER_DIMS, data.shape[1], len(rows) - len(rows) // splits - 1))
    model = make_pipeline(StandardScaler(), PCA(n_components=dims, random_state=seed),
                          LogisticRegression(C=CLASSIFIER_C, solver="newton-cg", max_iter=500))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        found = cross_val_predict(model, data, local, method="predict_proba",
                                  cv=StratifiedKFold(splits, shuffle=True, random_state=seed))
    probs[rows] = 0.0
    probs[np.ix_(rows, judged_classes)] = found
    return probs


def label_issues(vectors: np.ndarray, labels: np.ndarray, classes: Sequence[str], paths: Sequence[str], *,
                 seed: int = 0, probabilities: np.ndarray | None = None) -> list[LabelIssue]:
    """Images whose folder class the others disagree with, most likely first (confident learning)."""
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0 or len(classes) < 2:
        return []
    probs = (probabilities if probabilities is not None
             else out_of_sample_probabilities(vectors, labels, len(classes), seed=seed))
    present = np.flatnonzero(np.bincount(labels, minlength=len(classes)) > 0)
    if len(present) < 2:
        return []
    # cleanlab wants every column to be a class with examples: drop empty classes, renormalise
    local = np.searchsorted(present, labels)
    sub = probs[:, present]
    sub = sub / np.clip(sub.sum(axis=1, keepdims=True), 1e-12, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cleanlab's advice about tiny classes: the issues are still right
        ranked = find_label_issues(local, sub, return_indices_ranked_by="self_confidence", n_jobs=1)
    return [_issue(int(i), labels, probs, classes, paths) for i in ranked]


def _issue(index: int, labels: np.ndarray, probs: np.ndarray, classes: Sequence[str],
           paths: Sequence[str]) -> LabelIssue:
    given = int(labels[index])
    others = probs[index].copy()
    others[given] = -1.0
    suggested = int(np.argmax(others))
    return LabelIssue(path=str(paths[index]), given=classes[given], suggested=classes[suggested],
                      confidence=float(probs[index, suggested]), given_probability=float(probs[index, given]))


# -- near-duplicates ----------------------------------------------------------------------------------


def near_duplicates(vectors: np.ndarray, signatures: np.ndarray, digests: Sequence[str], paths: Sequence[str],
                    subsets: Sequence[str], *, embedding_similarity: float = EMBEDDING_SIMILARITY,
                    signature_similarity: float = SIGNATURE_SIMILARITY,
                    neighbours: int = DUPLICATE_NEIGHBOURS) -> list[NearDuplicate]:
    """Groups of images that look the same: the same contents, or close in both embedding and signature.

    Candidates are each image's nearest neighbours in either view; a group only grows by images that
    are near-duplicates of every member (no chains: A like B like C does not make A like C).
    Across-split groups first (``subsets`` holds "train"/"val" per image), then the most similar.
    """
    unit = unit_rows(vectors)
    sigs = np.asarray(signatures, dtype=np.float64)

    def twins(i: int, j: int) -> bool:
        return digests[i] == digests[j] or (float(unit[i] @ unit[j]) >= embedding_similarity
                                             and float(sigs[i] @ sigs[j]) >= signature_similarity)

    candidates = _candidate_pairs(unit, sigs, digests, neighbours)
    group_of: dict[int, list[int]] = {}
    for _, i, j in sorted(((-_similarity(unit, sigs, digests, i, j), i, j) for i, j in candidates)):
        a, b = group_of.get(i, [i]), group_of.get(j, [j])
        if a is b or not all(twins(x, y) for x in a for y in b):
            continue
        merged = sorted(a + b)
        for member in merged:
            group_of[member] = merged
    groups = {id(g): g for g in group_of.values()}.values()
    found = [_group(members, unit, sigs, digests, paths, subsets) for members in groups]
    return sorted(found, key=lambda d: (not d.across_split, -d.similarity, d.paths))


def _candidate_pairs(unit: np.ndarray, sigs: np.ndarray, digests: Sequence[str],
                     neighbours: int) -> set[tuple[int, int]]:
    """(i, j), i < j: the same contents, or one among the other's nearest neighbours in either view."""
    pairs: set[tuple[int, int]] = set()
    first: dict[str, int] = {}
    for i, digest in enumerate(digests):
        if digest in first:
            pairs.add((first[digest], i))
        else:
            first[digest] = i
    n = len(unit)
    if n < 2:
        return pairs
    for view in (unit, sigs):
        _, index = NearestNeighbors(n_neighbors=min(neighbours, n - 1)).fit(view).kneighbors()  # not itself
        for i, row in enumerate(index):
            pairs.update((min(i, int(j)), max(i, int(j))) for j in row)
    return pairs


def _similarity(unit: np.ndarray, sigs: np.ndarray, digests: Sequence[str], i: int, j: int) -> float:
    """1 for the same contents, else the lower of the two views' cosine similarities."""
    if digests[i] == digests[j]:
        return 1.0
    return float(min(unit[i] @ unit[j], sigs[i] @ sigs[j]))


def _group(members: list[int], unit: np.ndarray, sigs: np.ndarray, digests: Sequence[str], paths: Sequence[str],
           subsets: Sequence[str]) -> NearDuplicate:
    pairwise = [_similarity(unit, sigs, digests, i, j) for n, i in enumerate(members) for j in members[n + 1:]]
    where = {subsets[i] for i in members}
    return NearDuplicate(paths=tuple(str(paths[i]) for i in members), similarity=float(np.clip(min(pairwise), 0, 1)),
                         across_split={"train", "val"} <= where, exact=len({digests[i] for i in members}) == 1)


# -- outliers -----------------------------------------------------------------------------------------


def outliers(vectors: np.ndarray, labels: np.ndarray, classes: Sequence[str], paths: Sequence[str], *,
             signatures: np.ndarray | None = None, neighbours: int = OUTLIER_NEIGHBOURS,
             limit: int | None = None) -> list[Outlier]:
    """The most unusual images, most unusual first (see ``outlier_scores``); ``limit`` defaults to 5% of
    the images, at least 20 but never more than a tenth of them."""
    n = len(paths)
    if n < 3:
        return []
    scores = outlier_scores(vectors, signatures, neighbours=neighbours)
    if limit is None:
        limit = min(max(OUTLIER_MIN, round(n * OUTLIER_SHARE)), max(1, round(n * OUTLIER_MOST)))
    count = limit
    top = np.argsort(-scores, kind="stable")[:count]
    return [Outlier(path=str(paths[i]), given=classes[int(labels[i])], score=float(scores[i])) for i in top]


def outlier_scores(vectors: np.ndarray, signatures: np.ndarray | None = None, *,
                   neighbours: int = OUTLIER_NEIGHBOURS) -> np.ndarray:
    """Per image, how much farther it is from its nearest neighbours than a typical image is, in 0..1.

    Low density in two views: the network's (distance between centred, unit-length embeddings) and,
    given ``signatures``, the picture's (distance between perceptual signatures). Each view's mean
    distance to the ``neighbours`` nearest others is divided by that view's median; an image's score
    is the larger of the two, divided by the largest score. A network trained on a few classes can
    fold a photo of something else into one of them (its embedding is only a little unusual), but
    the photo still looks like no other image; a folder of varied photos has evenly spread signatures,
    so there the network's view decides.
    """
    views = [unit_rows(vectors)]
    if signatures is not None:
        views.append(np.asarray(signatures, dtype=np.float64))
    k = min(neighbours, len(views[0]) - 1)
    relative = []
    for view in views:
        distance, _ = NearestNeighbors(n_neighbors=k).fit(view).kneighbors()  # each image's neighbours, not itself
        mean = distance.mean(axis=1)
        typical = float(np.median(mean))
        relative.append(mean / typical if typical > 0 else mean)
    score = np.max(relative, axis=0)
    largest = float(score.max())
    return score / largest if largest > 0 else score
