"""Trainer: events and payloads, callbacks, stop/pause/cancel, NaN guard, OOM retry, strategies, heads, LR finder."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch

from core.errors import Cancelled, StudioError
from core.training import EventForwarder, Trainer, TrainingError, TrainSettings
from core.training.augment import PRESETS, build_augment, preview
from core.training.callbacks import Callback
from core.training.events import EVENTS, CancelledByUser
from core.training.lr_finder import suggest_lr
from core.training.setup import EpochSampler, head_name, replace_head
from core.zoo import get_spec
from tests.support.digits import write_digits

FAST = dict(model="resnet18", weights="none", strategy="scratch", batch_size=16, lr=2e-3, image_size=32,
            augment="none", name="tiny")


@pytest.fixture(scope="module")
def tiny_digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root, _ = write_digits(tmp_path_factory.mktemp("digits") / "digits", size=16, per_class=10)
    return root


class Log(EventForwarder):
    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        super().__init__(lambda name, event: self.events.append((name, event)))

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def of(self, kind: str) -> list:
        return [event for name, event in self.events if name == kind]


class PausedNotices(EventForwarder):
    """``paused`` is set each time the fit says it paused (it is then blocked until resume or cancel)."""

    def __init__(self) -> None:
        self.paused = threading.Event()
        super().__init__(self._seen)

    def _seen(self, name: str, event) -> None:
        if name == "notice" and event.kind == "paused":
            self.paused.set()


def _trainer(data: Path, *callbacks: Callback, **changes) -> Trainer:
    return Trainer(TrainSettings(data=str(data), **{**FAST, "epochs": 2, **changes}), callbacks=list(callbacks))


@pytest.mark.slow
def test_fit_emits_named_events_with_plain_payloads(tiny_digits: Path) -> None:
    log = Log()
    result = _trainer(tiny_digits, log).fit()
    names = log.names()
    assert names[0] == "progress" and "fit_start" in names and names[-1] == "fit_end"
    body = [n for n in names if n not in ("progress", "notice")]
    per_epoch = ["epoch_start"] + ["batch_end"] * 5 + ["epoch_end"]
    assert body == ["fit_start", *per_epoch, *per_epoch, "fit_end"]  # 80 training images / 16
    assert set(names) <= set(EVENTS)
    start = log.of("fit_start")[0]
    assert start.classes == [str(d) for d in range(10)] and (start.train_images, start.val_images) == (80, 20)
    assert start.steps_per_epoch == 5 and start.start_epoch == 1
    batch = log.of("batch_end")[-1]
    assert (batch.epoch, batch.batch, batch.batches, batch.step) == (2, 5, 5, 10) and batch.loss > 0 and batch.lr > 0
    end = log.of("epoch_end")[-1]
    assert end.epoch == 2 and 0 <= end.val_acc <= 1 and end.val_loss > 0 and end.seconds > 0
    fit_end = log.of("fit_end")[0]
    assert fit_end.status == "completed" and fit_end.bundle == str(result.bundle)
    for _, event in log.events:
        json.dumps(event.to_json())  # every payload is plain data
    assert result.status == "completed" and result.epochs_done == 2 and result.bundle.is_dir()
    assert len(result.history["loss"]) == 10 and len(result.history["epochs"]) == 2
    assert set(result.metrics["per_class_acc"]) == set(start.classes)


def test_settings_are_checked_and_round_trip() -> None:
    settings = TrainSettings(data="x", lr=0.01, patience=2)
    assert TrainSettings.from_json(json.loads(json.dumps(settings.to_json()))) == settings
    for bad in (dict(strategy="magic"), dict(epochs=0), dict(lr=-1.0), dict(lr="fast"), dict(augment="wild"),
                dict(val_fraction=1.5), dict(image_size=4), dict(strategy="finetune", weights="none")):
        with pytest.raises(StudioError, match="bad training settings"):
            TrainSettings(**bad)
    with pytest.raises(StudioError, match="unknown key"):
        TrainSettings.from_json({"epochs": 2, "rm -rf": 1})


@pytest.mark.slow
def test_nan_guard_stops_with_a_clear_message(tiny_digits: Path) -> None:
    class Poison(Callback):
        def batch_end(self, event) -> None:
            if event.step == 2:
                with torch.no_grad():
                    self.trainer.model.fc.weight.fill_(float("nan"))

    log = Log()
    with pytest.raises(TrainingError, match=r"diverged: the loss became nan at epoch 1, batch 3.*lower learning rate"):
        _trainer(tiny_digits, Poison(), log).fit()
    assert log.of("fit_end")[0].status == "failed" and len(log.of("batch_end")) == 3


@pytest.mark.slow
def test_cuda_out_of_memory_retries_with_half_the_batch(tiny_digits: Path) -> None:
    class TightMemory(Callback):  # a "GPU" that fits 8 images per forward pass
        def fit_start(self, event) -> None:
            forward = self.trainer.net.forward

            def limited(x):
                if x.shape[0] > 8:
                    raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
                return forward(x)

            self.trainer.net.forward = limited

    log = Log()
    trainer = _trainer(tiny_digits, TightMemory(), log, epochs=1)
    result = trainer.fit()
    retries = [n.message for n in log.of("notice") if n.kind == "oom_retry"]
    assert retries[0].startswith("CUDA ran out of memory with 16 images per step; retrying with 8")
    assert "the batch size stays 16" in retries[0]
    assert len(retries) == 1 and trainer.micro_batch == 8 and result.status == "completed"
    assert all(torch.isfinite(torch.tensor(e.loss)) for e in log.of("batch_end"))

    class NoMemory(Callback):
        def fit_start(self, event) -> None:
            def broken(x):
                raise torch.cuda.OutOfMemoryError("CUDA out of memory")

            self.trainer.net.forward = broken

    with pytest.raises(TrainingError, match="out of GPU memory even with one image"):
        _trainer(tiny_digits, NoMemory(), epochs=1).fit()


def _run_in_thread(trainer: Trainer) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["result"] = trainer.fit()
        except Exception as exc:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    return thread, outcome


def test_cancel_from_another_thread_stops_within_one_batch(tiny_digits: Path) -> None:
    first_batch = threading.Event()
    log = Log()

    class Signal(Callback):
        def batch_end(self, event) -> None:
            first_batch.set()

    trainer = _trainer(tiny_digits, Signal(), log, epochs=3)
    thread, outcome = _run_in_thread(trainer)
    assert first_batch.wait(60)
    trainer.cancel()
    cancelled_at = len(log.of("batch_end"))
    thread.join(60)
    assert not thread.is_alive()
    assert isinstance(outcome["error"], Cancelled) and str(outcome["error"]) == "training cancelled"
    assert len(log.of("batch_end")) <= cancelled_at + 1
    assert log.of("fit_end")[0].status == "cancelled"


@pytest.mark.slow
def test_pause_and_resume_from_another_thread(tiny_digits: Path) -> None:
    first_batch = threading.Event()
    log = Log()

    class Signal(Callback):
        def batch_end(self, event) -> None:
            first_batch.set()

    notices = PausedNotices()
    trainer = _trainer(tiny_digits, Signal(), log, notices, epochs=1)
    trainer.pause()
    thread, outcome = _run_in_thread(trainer)
    assert notices.paused.wait(60)  # a pause before the first batch does not block preparation
    assert not first_batch.is_set()
    notices.paused.clear()
    trainer.resume()
    assert first_batch.wait(60)
    trainer.pause()
    assert notices.paused.wait(60)
    seen = len(log.of("batch_end"))
    thread.join(0.5)  # the fit must not move on (nor end) while paused
    assert len(log.of("batch_end")) == seen and thread.is_alive()
    trainer.resume()
    thread.join(120)
    assert outcome["result"].status == "completed" and len(log.of("batch_end")) == 5
    kinds = [n.kind for n in log.of("notice")]
    assert kinds.index("paused") < kinds.index("resumed")


def test_cancel_while_paused_ends_the_fit(tiny_digits: Path) -> None:
    first_batch = threading.Event()

    class PauseAtFirst(Callback):
        order = 50  # before StopOnRequest checks

        def batch_end(self, event) -> None:
            self.trainer.pause()
            first_batch.set()

    notices = PausedNotices()
    trainer = _trainer(tiny_digits, PauseAtFirst(), notices, epochs=1)
    thread, outcome = _run_in_thread(trainer)
    assert first_batch.wait(60) and notices.paused.wait(60)
    trainer.cancel()
    thread.join(60)
    assert isinstance(outcome["error"], Cancelled)


@pytest.mark.slow
def test_early_stopping_ends_the_fit_and_still_saves(tiny_digits: Path) -> None:
    class FlatValidation(Callback):
        order = -150  # before EarlyStopping reads the epoch

        def epoch_end(self, event) -> None:
            object.__setattr__(event, "val_loss", 1.0)  # never improves

    log = Log()
    result = _trainer(tiny_digits, FlatValidation(), log, epochs=5, patience=1).fit()
    assert result.status == "early_stopped" and result.epochs_done == 2
    assert "no better validation loss for 1 epoch (best" in result.message and result.bundle.is_dir()
    assert any(n.kind == "early_stop" for n in log.of("notice"))


@pytest.mark.slow
def test_a_callback_raising_cancel_still_lets_every_callback_see_the_event(tiny_digits: Path) -> None:
    seen = []

    class Stopper(Callback):
        order = -500

        def epoch_end(self, event) -> None:
            raise CancelledByUser("stop now")

    class Late(Callback):
        order = 500

        def epoch_end(self, event) -> None:
            seen.append(event.epoch)

    trainer = _trainer(tiny_digits, Stopper(), Late(), epochs=3)
    with pytest.raises(Cancelled):
        trainer.fit()
    assert seen == [1] and (trainer.run_dir / "checkpoint.pt").is_file()


@pytest.mark.slow
def test_corrupt_file_is_skipped_and_reported(tiny_digits: Path, tmp_path: Path) -> None:
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_digits, data)
    broken = data / "3" / "zz_broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    log = Log()
    result = _trainer(data, log, epochs=1).fit()
    assert result.status == "completed"
    data_notes = [n.message for n in log.of("notice") if n.kind == "data"]
    assert any("cannot be read" in m for m in data_notes)

    # a file that breaks after the scan (decode cache off): skipped during the epoch
    later = data / "5"
    victim = sorted(later.iterdir())[0]
    log = Log()
    trainer = _trainer(data, log, epochs=1, cache="off")

    class BreakAFile(Callback):
        def fit_start(self, event) -> None:
            victim.write_bytes(b"garbage")

    trainer.callbacks.append(BreakAFile())
    result = trainer.fit()
    skipped = [n for n in log.of("notice") if n.kind == "skipped_file"]
    # every skipped file is named: the one the scan found unreadable, then the one that broke later
    assert result.status == "completed" and [n.path for n in skipped] == [str(broken), str(victim)]
    assert result.metrics["skipped_files"] == 2


@pytest.mark.slow
def test_head_of_every_family(tmp_path: Path) -> None:
    expected = {"resnet18": "fc", "alexnet": "classifier.6", "vgg11": "classifier.6", "densenet121": "classifier",
                "googlenet": "fc", "nin": "classifier.4", "csp_resnet50": "fc", "wrc_resnet18": "fc"}
    for name, head in expected.items():
        with torch.device("meta"):
            model = get_spec(name).build()
            assert head_name(model) == head
            assert replace_head(model, 7) == head
            out = model.eval()(torch.zeros(2, 3, 224, 224))
        assert out.shape == (2, 7), name


@pytest.mark.slow
def test_head_strategy_freezes_the_backbone(tiny_digits: Path, fake_pretrained) -> None:
    fake_pretrained("resnet18")
    before = {}

    class Snapshot(Callback):
        def fit_start(self, event) -> None:
            before.update({k: v.clone() for k, v in self.trainer.model.state_dict().items()})

    trainer = _trainer(tiny_digits, Snapshot(), strategy="head", weights="default", epochs=1)
    trainer.fit()
    after = trainer.model.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed == {"fc.weight", "fc.bias"}  # BatchNorm statistics stay frozen too
    assert [p.requires_grad for p in trainer.model.parameters()].count(True) == 2


@pytest.mark.slow
def test_finetune_trains_the_backbone_at_a_lower_rate(tiny_digits: Path, fake_pretrained) -> None:
    fake_pretrained("resnet18")
    trainer = _trainer(tiny_digits, strategy="finetune", weights="default", epochs=1, schedule="cosine",
                       warmup_fraction=0.0, lr=1e-3)
    trainer.fit()
    rates = sorted({round(g["initial_lr"], 9) for g in trainer.optimizer.param_groups})
    assert rates == [1e-4, 1e-3]
    fc = [g for g in trainer.optimizer.param_groups if any(p is trainer.model.fc.weight for p in g["params"])][0]
    assert fc["weight_decay"] > 0
    bn = [g for g in trainer.optimizer.param_groups if any(p is trainer.model.bn1.weight for p in g["params"])][0]
    assert bn["weight_decay"] == 0


def test_pretrained_strategies_need_pretrained_weights(tiny_digits: Path) -> None:
    with pytest.raises(TrainingError, match="'nin' has no pretrained weights; train it with strategy 'scratch'"):
        _trainer(tiny_digits, model="nin", strategy="finetune", weights="default", image_size=67).fit()
    with pytest.raises(TrainingError, match="not downloaded|no network"):
        _trainer(tiny_digits, strategy="head", weights="default").fit()  # offline, nothing cached


@pytest.mark.slow
def test_lr_finder_returns_a_curve(tiny_digits: Path) -> None:
    trainer = _trainer(tiny_digits, lr="auto")
    log = Log()
    trainer.callbacks.append(log)
    points = []
    found = trainer.find_lr(steps=20, end_lr=1.0, on_step=points.append)
    assert 1e-6 <= found.suggestion <= 1.0 and len(found.lrs) == len(found.losses) == len(found.raw_losses) >= 5
    assert found.lrs == sorted(found.lrs) and found.lrs[0] == pytest.approx(1e-7)
    assert [e.phase for e in log.of("progress")].count("lr_find") == len(found.lrs)
    json.dumps(found.to_json())
    # every recorded point reached on_step as it came, in order, as plain numbers
    assert [p.step for p in points] == list(range(1, len(found.lrs) + 1)) and {p.steps for p in points} == {20}
    assert [p.lr for p in points] == found.lrs and [p.smoothed for p in points] == found.losses
    assert [p.loss for p in points] == found.raw_losses


def test_suggestion_is_the_steepest_descent() -> None:
    lrs = [10 ** (-5 + i / 10) for i in range(40)]
    losses = [2.0] * 10 + [2.0 - 0.1 * i for i in range(15)] + [0.6 + 0.5 * i for i in range(15)]
    suggestion, steepest, min_div_10 = suggest_lr(lrs, losses)
    assert steepest is not None and lrs[10] <= steepest <= lrs[24] and suggestion == steepest
    assert min_div_10 == pytest.approx(lrs[24] / 10)
    assert suggest_lr(lrs[:3], losses[:3])[0] == pytest.approx(lrs[0] / 10)  # too short: min / 10


@pytest.mark.slow
def test_auto_lr_then_fit_equals_fitting_with_the_found_lr(tiny_digits: Path, tmp_path: Path) -> None:
    """The finder restores weights, BatchNorm statistics and RNGs: it leaves no trace in the fit."""
    log = Log()
    auto = _trainer(tiny_digits, log, lr="auto", epochs=1, augment="light")
    auto.run_dir = tmp_path / "auto"
    auto.fit()
    note = [n.message for n in log.of("notice") if n.kind == "lr_found"]
    assert note and isinstance(auto.settings.lr, float) and note[0].endswith(f"{auto.settings.lr:.2e}")
    given = _trainer(tiny_digits, lr=auto.settings.lr, epochs=1, augment="light")
    given.run_dir = tmp_path / "given"
    given.fit()
    a, b = auto.model.state_dict(), given.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_epoch_order_is_a_function_of_seed_and_epoch() -> None:
    a = list(EpochSampler(50, seed=1, epoch=3))
    assert a == list(EpochSampler(50, seed=1, epoch=3)) and a != list(EpochSampler(50, seed=1, epoch=4))
    assert sorted(a) == list(range(50))
    shards = [list(EpochSampler(51, seed=1, epoch=0, rank=r, world=2)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 26 and set(shards[0]) | set(shards[1]) == set(range(51))


def test_augmentation_presets_and_previews(tmp_path: Path) -> None:
    from tests.support.photos import photo

    image = photo("chelsea")
    assert set(PRESETS) == {"none", "light", "strong"}
    assert build_augment("none", 32) is None
    rng = torch.get_rng_state()
    for preset in ("light", "strong"):
        shots = preview(image, preset, size=48, count=4, seed=1)
        assert len(shots) == 4 and all(s.size == (48, 48) for s in shots)
        assert [s.tobytes() for s in shots] == [s.tobytes() for s in preview(image, preset, size=48, count=4, seed=1)]
        assert len({s.tobytes() for s in shots}) > 1
    assert torch.equal(rng, torch.get_rng_state())
    with pytest.raises(StudioError, match="unknown augmentation"):
        build_augment("wild", 32)
