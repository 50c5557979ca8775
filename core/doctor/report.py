"""What the doctor found, as plain data: the map, likely label errors, near-duplicates, outliers.

Paths are absolute strings, as in :class:`core.data.Sample`; ``to_json``/``from_json`` round-trip
(the CLI's ``--json`` and the wizard's results page read the same record).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["EmbeddingSource", "MapPoint", "LabelIssue", "NearDuplicate", "Outlier", "DoctorReport"]


@dataclass(frozen=True)
class EmbeddingSource:
    """The network the folder is seen through."""

    model: str  # registry name or saved model's name (core.models.resolve finds it again)
    display_name: str
    kind: str  # "pretrained" | "saved" | "random"
    note: str = ""  # one plain sentence for the user, e.g. why a random network's map means little


@dataclass(frozen=True)
class MapPoint:
    path: str
    label: int  # index into DoctorReport.classes (the folder's class)
    subset: str  # "train" | "val": the split training would use
    x: float
    y: float


@dataclass(frozen=True)
class LabelIssue:
    """An image whose folder class disagrees with what the other images say it is."""

    path: str
    given: str  # its folder's class
    suggested: str  # the class the out-of-sample classifier gives it
    confidence: float  # out-of-sample probability of ``suggested`` (0..1)
    given_probability: float  # out-of-sample probability of ``given`` (0..1)


@dataclass(frozen=True)
class NearDuplicate:
    """Two or more images that look the same; strongest when they straddle the train/validation split."""

    paths: tuple[str, ...]
    similarity: float  # lowest pairwise similarity within the group, 0..1
    across_split: bool  # members in both the training and the validation part
    exact: bool  # identical file contents


@dataclass(frozen=True)
class Outlier:
    path: str
    given: str  # its folder's class
    score: float  # higher: farther from every class (0..1 after ranking)


@dataclass
class DoctorReport:
    folder: str
    source: EmbeddingSource
    classes: list[str]
    points: list[MapPoint] = field(default_factory=list)
    label_issues: list[LabelIssue] = field(default_factory=list)  # most likely first
    duplicates: list[NearDuplicate] = field(default_factory=list)  # across-split and most similar first
    outliers: list[Outlier] = field(default_factory=list)  # most unusual first
    unreadable: list[dict[str, str]] = field(default_factory=list)  # {"path", "reason"}: skipped
    seconds: float = 0.0  # wall time of the whole examination
    embed_seconds: float = 0.0  # of which computing embeddings (0 when all came from the cache)
    cached: int = 0  # embeddings that came from the cache

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DoctorReport:
        return cls(
            folder=str(data["folder"]), source=EmbeddingSource(**data["source"]), classes=list(data["classes"]),
            points=[MapPoint(**p) for p in data.get("points", [])],
            label_issues=[LabelIssue(**i) for i in data.get("label_issues", [])],
            duplicates=[NearDuplicate(**{**d, "paths": tuple(d["paths"])}) for d in data.get("duplicates", [])],
            outliers=[Outlier(**o) for o in data.get("outliers", [])],
            unreadable=list(data.get("unreadable", [])), seconds=float(data.get("seconds", 0.0)),
            embed_seconds=float(data.get("embed_seconds", 0.0)), cached=int(data.get("cached", 0)))
