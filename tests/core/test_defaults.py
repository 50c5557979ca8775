"""One source of training defaults: the ``train`` command's options come from TrainSettings."""

from __future__ import annotations

import pytest

from core.cli import build_parser
from core.training.settings import LIMITS, TrainSettings

# option dest -> TrainSettings field, where the names differ
RENAMED = {"folder": "data", "workers": "num_workers"}
NOT_SETTINGS = {"command", "func", "out", "overwrite", "resume", "json", "strategy"}  # strategy: from --weights


def test_train_options_default_to_the_settings_defaults() -> None:
    args = vars(build_parser().parse_args(["train", "photos"]))
    fields = {RENAMED.get(dest, dest): value for dest, value in args.items() if dest not in NOT_SETTINGS}
    fields.pop("data")
    assert fields == {name: TrainSettings.default(name) for name in fields}
    assert set(TrainSettings.__dataclass_fields__) - set(fields) == {
        "data", "strategy", "weight_decay", "momentum", "warmup_fraction", "amp", "channels_last", "deterministic",
        "backbone_lr_factor", "keep_best"}  # settings the CLI does not expose


@pytest.mark.parametrize("field", sorted(LIMITS))
def test_train_options_refuse_what_the_settings_refuse(field: str, capsys) -> None:
    flag = {"num_workers": "--workers", "batch_size": "--batch-size"}.get(field, f"--{field}")
    low, high = LIMITS[field]
    parser = build_parser()
    dest = "workers" if field == "num_workers" else field
    assert getattr(parser.parse_args(["train", "x", flag, str(high)]), dest) == high
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "x", flag, str(high + 1)])
    assert f"from {low} to {high}" in capsys.readouterr().err
