"""The bake-off end to end on a tiny real data set: the same numbers as training each model alone, the files
it leaves, skipping and failing models, a time budget, and the Ray executor against the local one.

Three digit classes, 12 images each at 32 px; ResNet-18 and GoogLeNet from scratch, a fixed learning rate
(no finder), 2 epochs: a bake-off takes a few seconds on two cores.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from core.bakeoff.cli import _epochs_for
from core.bakeoff.leaderboard import Leaderboard
from core.bakeoff.plan import PLAN_NAME, ModelEntry, load_plan, make_plan
from core.bakeoff.probe import epochs_within, probe
from core.bakeoff.results import read_result
from core.bakeoff.runner import BakeoffControl, BakeoffListener, run_bakeoff
from core.training.settings import TrainSettings
from core.training.trainer import Trainer
from tests.support.digits import write_digit_classes

MODELS = ["resnet18", "googlenet"]
COMMON = dict(lr=0.003, batch_size=8, augment="none", image_size=32)
SEED = 3


@pytest.fixture(scope="module")
def digits3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_digit_classes(tmp_path_factory.mktemp("bakeoff") / "digits", ("0", "1", "2"), 12, size=32)


def _plan(folder: Path, out: Path, models=MODELS, epochs: int = 2, **extra):
    return make_plan(str(folder), list(models), out=out, epochs=epochs, seed=SEED, **{**COMMON, **extra})


def _predictions(plan) -> dict[str, list[int]]:
    return {m: read_result(plan.result_path(m)).predictions for m in plan.models}


@pytest.fixture(scope="module")
def local_run(digits3: Path, tmp_path_factory: pytest.TempPathFactory):
    plan = _plan(digits3, tmp_path_factory.mktemp("local") / "out")
    return plan, run_bakeoff(plan)


@pytest.mark.slow
def test_each_model_scores_exactly_what_training_it_alone_gives(digits3: Path, local_run, tmp_path: Path) -> None:
    plan, board = local_run
    assert plan.entries == tuple(ModelEntry(m, "scratch", 2, "its ImageNet weights are not on this machine")
                                 for m in MODELS)
    for model in MODELS:
        # what `python main.py train FOLDER --model M --weights none --strategy scratch ...` does: its own scan
        alone = Trainer(TrainSettings(data=str(digits3), model=model, weights="none", strategy="scratch", epochs=2,
                                      seed=SEED, name=f"alone-{model}", **COMMON),
                        run_dir=tmp_path / "runs" / model, models_root=tmp_path / "models").fit()
        row = board.row(model)
        assert row.status == "completed" and row.epochs_done == 2
        assert row.val_acc == alone.metrics["val_acc"]  # exactly the same float
        right = sum(p == s.label for p, s in zip(_predictions(plan)[model], plan.split.val))
        assert row.accuracy == pytest.approx(right / len(plan.split.val), abs=1e-12)
        assert abs(row.accuracy - alone.metrics["val_acc"]) < 1e-9


@pytest.mark.slow
def test_the_bakeoff_folder_holds_plan_results_leaderboard_and_bundles(local_run) -> None:
    plan, board = local_run
    out = Path(plan.out)
    assert (out / PLAN_NAME).is_file() and load_plan(out).split == plan.split
    for model in MODELS:
        result = read_result(out / "results" / f"{model}.json")
        assert result is not None and result.finished and len(result.predictions) == len(plan.split.val)
        assert Path(result.bundle) == out / "models" / plan.bundle_name(model)
        assert (Path(result.bundle) / "weights.pt").is_file()
        assert [e["epoch"] for e in result.history] == [1, 2]
    written = json.loads((out / "leaderboard.json").read_text(encoding="utf-8"))
    assert written == json.loads(json.dumps(board.to_json()))
    assert Leaderboard.from_json(written).to_json() == board.to_json()
    assert sorted(r.rank for r in board.ranked) == [1, 2]


class SkipAfterFirstEpoch(BakeoffListener):
    def __init__(self, control: BakeoffControl, model: str) -> None:
        self.control, self.model, self.events, self.ended = control, model, [], {}

    def job_event(self, model: str, name: str, payload) -> None:
        if name == "epoch_end":
            self.events.append((model, payload.epoch))
            if model == self.model:
                self.control.skip(model)

    def job_ended(self, model: str, result) -> None:
        self.ended[model] = result.status


@pytest.mark.slow
def test_a_model_skipped_while_it_trains_stops_and_the_next_one_runs(digits3: Path, tmp_path: Path) -> None:
    plan = _plan(digits3, tmp_path / "out", epochs=3)
    control = BakeoffControl()
    listener = SkipAfterFirstEpoch(control, "resnet18")
    board = run_bakeoff(plan, listener=listener, control=control)
    assert listener.events == [("resnet18", 1), ("googlenet", 1), ("googlenet", 2), ("googlenet", 3)]
    assert listener.ended == {"resnet18": "skipped", "googlenet": "completed"}
    assert board.row("resnet18").status == "skipped" and not board.row("resnet18").ranked
    assert board.winner == "googlenet" and read_result(plan.result_path("resnet18")).status == "skipped"


@pytest.mark.slow
def test_a_failed_model_is_listed_with_its_reason_and_the_others_run(digits3: Path, tmp_path: Path) -> None:
    plan = _plan(digits3, tmp_path / "out", epochs=1)
    # fine-tuning ResNet-18 needs its ImageNet weights: offline with an empty cache, there are none
    plan = dataclasses.replace(plan, entries=(ModelEntry("resnet18", "finetune", 1, "as asked"),
                                              ModelEntry("googlenet", "scratch", 1, "as asked")))
    board = run_bakeoff(plan)
    failed = board.row("resnet18")
    assert failed.status == "failed" and not failed.ranked
    assert "weights" in failed.message.lower(), failed.message
    assert board.row("googlenet").status == "completed" and board.winner == "googlenet"
    assert read_result(plan.result_path("resnet18")).message == failed.message


@pytest.mark.slow
def test_a_time_budget_gives_each_model_its_epochs_from_the_timed_probe(digits3: Path, tmp_path: Path) -> None:
    estimates: dict = {}
    plan = make_plan(str(digits3), MODELS, out=tmp_path / "out", minutes=0.2, seed=SEED,
                     epochs_for=_epochs_for(estimates), **COMMON)
    assert plan.budget == "minutes" and plan.minutes == 0.2 and set(estimates) == set(MODELS)
    for entry in plan.entries:
        estimate = estimates[entry.model]
        assert entry.epochs >= 1 and entry.epochs == epochs_within(estimate, 0.2)
        assert estimate.lr_find_steps == 0  # a fixed learning rate: no finder to budget for
        assert entry.epochs == max(1, int(0.2 * 60 // estimate.epoch_seconds))
    again = probe("resnet18", strategy="scratch", split=plan.split, settings=plan.base.replace(model="resnet18"))
    batches = -(-len(plan.split.train) // COMMON["batch_size"])
    assert again.steps_per_epoch == estimates["resnet18"].steps_per_epoch == batches


@pytest.mark.slow
def test_the_ray_executor_gives_the_local_leaderboard(digits3: Path, local_run, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    plan, board = local_run
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        on_ray = _plan(digits3, tmp_path / "out")
        ray_board = run_bakeoff(on_ray, executor="ray")
    finally:
        ray.shutdown()
    assert on_ray.split == plan.split
    assert _predictions(on_ray) == _predictions(plan)
    for model in MODELS:
        a, b = board.row(model), ray_board.row(model)
        assert (a.accuracy, a.ci_low, a.ci_high, a.macro_f1, a.val_acc, a.epochs_done) == \
               (b.accuracy, b.ci_low, b.ci_high, b.macro_f1, b.val_acc, b.epochs_done)
    assert [r.model for r in ray_board.ranked] == [r.model for r in board.ranked]  # ties: the order given
    assert _pairs(ray_board) == _pairs(board) and ray_board.confusions == board.confusions
    assert sorted(d.path for d in ray_board.disagreements) == sorted(d.path for d in board.disagreements)
    assert {d.path: d.answers for d in ray_board.disagreements} == {d.path: d.answers for d in board.disagreements}


def _pairs(board: Leaderboard) -> dict:
    """The comparisons, whichever model of a tied pair the ranking put first."""
    return {frozenset((c.a, c.b)): (abs(c.diff), sorted((c.a_only, c.b_only)), c.p, c.p_holm, c.significant)
            for c in board.comparisons}
