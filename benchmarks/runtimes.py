"""Alternative CPU runtimes for ResNet-50 against our eager forward, interleaved.

Run: ``python -m benchmarks.runtimes [--compile]`` in an environment that has
``onnxruntime`` / ``openvino`` / ``onnx`` (the project's venv carries the first
and the last through the ``onnx`` extra; ``pip install openvino`` adds the other). Rows for
runtimes that are not installed are left out; ``python -m benchmarks`` runs
this only when at least one of them is importable, so the recorded section
survives a plain run. ``--compile`` adds ``torch.compile`` with inductor
freezing (mkldnn weight prepacking; ~20 s of compiling on 2 cores).
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torchvision

from benchmarks.common import interleaved, machine, median_ms, write_section

Runner = Callable[[torch.Tensor], torch.Tensor]


def available() -> list[str]:
    return [name for name in ("onnxruntime", "openvino") if importlib.util.find_spec(name) is not None]


def _export(model: torch.nn.Module, folder: Path) -> Path:
    path = folder / "resnet50.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(2, 3, 224, 224),), str(path), dynamo=False, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    return path


def _ort(path: Path) -> Runner:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # spinning would starve the others
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run(None, {"x": x.numpy()})[0])


def _openvino(path: Path) -> Runner:
    import openvino as ov

    compiled = ov.Core().compile_model(str(path), "CPU", {"PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    return lambda x: torch.from_numpy(np.array(request.infer({0: x.numpy()})[compiled.output(0)]))


def _compiled(model: torch.nn.Module) -> Runner:
    import torch._inductor.config as inductor

    inductor.freezing = True
    compiled = torch.compile(model.to(memory_format=torch.channels_last))
    return lambda x: compiled(x.contiguous(memory_format=torch.channels_last))


def run(reps: int, *, compile_too: bool) -> str:
    torch.manual_seed(0)
    model = torchvision.models.resnet50().eval()
    eager = torchvision.models.resnet50().eval()
    eager.load_state_dict(model.state_dict())
    eager = eager.to(memory_format=torch.channels_last)
    runners: dict[str, Runner] = {"eager (ours: channels_last, inference_mode)":
                                  lambda x: eager(x.contiguous(memory_format=torch.channels_last))}
    setup: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        start = time.perf_counter()
        onnx_path = _export(model, Path(tmp)) if available() else None
        export_s = time.perf_counter() - start
        makers = {"ONNX Runtime (CPU EP)": ("onnxruntime", _ort), "OpenVINO (CPU, LATENCY)": ("openvino", _openvino)}
        for label, (module, make) in makers.items():
            if module in available():
                start = time.perf_counter()
                runners[label] = make(onnx_path)
                setup[label] = export_s + time.perf_counter() - start
        if compile_too:
            start = time.perf_counter()
            compiled_model = torchvision.models.resnet50().eval()
            compiled_model.load_state_dict(model.state_dict())
            runners["torch.compile (inductor, freezing)"] = compiled = _compiled(compiled_model)
            for n in (1, 8):  # compile both shapes now, not inside the timed runs
                compiled(torch.randn(n, 3, 224, 224))
            setup["torch.compile (inductor, freezing)"] = time.perf_counter() - start
        rows = _rows(runners, setup, reps)
    return (f"Machine: {machine()}.\nCommand: `python -m benchmarks.runtimes{' --compile' if compile_too else ''} "
            f"--reps {reps}`; medians of {reps} interleaved runs; random weights.\n\n"
            "| runtime | batch 1 ms | vs eager | batch 8 ms/photo | vs eager | first use (export + prepare) "
            "| top-5 as eager |\n"
            "|---|---|---|---|---|---|---|\n" + rows)


def _rows(runners: dict[str, Runner], setup: dict[str, float], reps: int) -> str:
    torch.manual_seed(1)
    inputs = {1: torch.randn(1, 3, 224, 224), 8: torch.randn(8, 3, 224, 224)}
    times = {n: interleaved({k: (lambda f=f, x=x: f(x)) for k, f in runners.items()}, reps=reps, warmup=2)
             for n, x in inputs.items()}
    eager_name = next(iter(runners))
    reference = runners[eager_name](inputs[8]).topk(5).indices
    out = ""
    for name, fn in runners.items():
        b1, b8 = median_ms(times[1][name]), median_ms(times[8][name]) / 8
        e1, e8 = median_ms(times[1][eager_name]), median_ms(times[8][eager_name]) / 8
        same = bool((fn(inputs[8]).topk(5).indices == reference).all())
        first = f"{setup[name]:.1f} s" if name in setup else "-"
        out += (f"| {name} | {b1:.1f} | {e1 / b1:.2f}x | {b8:.1f} | {e8 / b8:.2f}x | {first} "
                f"| {'yes' if same else 'NO'} |\n")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--compile", action="store_true", help="add torch.compile (slow to compile)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    text = run(args.reps, compile_too=args.compile)
    print(text)
    if not args.no_write:
        write_section("runtimes", text)


if __name__ == "__main__":
    main()
