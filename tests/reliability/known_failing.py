"""What fails on today's code: (entry point pair id) -> reason, for strict xfail marks.

Generated from a run of the capped runner on the harness branch (before the issue 13 fixes), then
edited by hand. Once a fix lands, its pairs XPASS: delete their lines here.
"""

KNOWN_CAPPED: dict[str, str] = {
    "image:classify:float32-deflate-near-limit.tif":
        "issue 13 item 6: over_memory (12.634 s, 1844.7 MB): error: float32_deflate_near_limit.tif: not "
        "enough memory to decode 9459x9459 pixels",
    "image:explain:float32-deflate-near-limit.tif":
        "issue 13 item 6: over_memory (63.052 s, 1949.1 MB): error: float32_deflate_near_limit.tif: not "
        "enough memory to decode 9459x9459 pixels",
    "image:classify:many-ztxt.png":
        "issue 13 smaller: the message does not say what the file is: 'note: resnet18 runs with untrained "
        "(random) weights: its predictions mean nothing/nerror: many_ztxt.png: t",
    "image:explain:many-ztxt.png":
        "issue 13 smaller: the message does not say what the file is: 'error: many_ztxt.png: truncated or "
        "corrupt image data/n'",
    "image:compare --json:many-ztxt.png":
        "issue 13 smaller: the message does not say what the file is: 'txt.png',/n        'ok': false,/n"
        "        'error': 'many_ztxt.png: truncated or corrupt image data',/n     ",
    "image:train scan:many-ztxt.png":
        "issue 13 smaller: the message does not say what the file is: 'many_ztxt.png: truncated or corrupt "
        "image data'",
    "image:train decode:many-ztxt.png":
        "issue 13 smaller: the message does not say what the file is: 'many_ztxt.png: truncated or corrupt "
        "image data'",
    "image:classify:name-udcff-udcfe-invalid-utf8.jpg":
        "issue 13 item 9: traceback (1.104 s, 0.0 MB): UnicodeEncodeError: 'utf-8' codec can't encode "
        "characters in position 33-34: surrogates not allowed",
    "image:explain:name-udcff-udcfe-invalid-utf8.jpg":
        "issue 13 item 9: traceback (2.28 s, 0.1 MB): UnicodeEncodeError: 'utf-8' codec can't encode "
        "characters in position 33-34: surrogates not allowed",
    "image:classify:name-31mred-0m-forged-line.jpg":
        "issue 13 item 9: control characters or a forged line reach stdout: 'name-/x1b[31mred/x1b[0m-/nforged"
        " line.jpg  [resnet18 (untrained), decode 21 ms, infer 451 ms]/n   1",
    "image:explain:name-31mred-0m-forged-line.jpg":
        "issue 13 item 9: control characters or a forged line reach stdout: 'name-/x1b[31mred/x1b[0m-/nforged"
        " line.jpg: layer layer4 [512, 7, 7], Grad-CAM of 'Greater Swiss Mou",
    "folder:classify --json:symlink-outside":
        "issue 13 item 7: walked outside the folder: 0000_astronaut.jpg",
    "folder:compare --json:symlink-outside":
        "issue 13 item 7: walked outside the folder: 0000_astronaut.jpg",
    "folder:evaluate --json:symlink-outside":
        "issue 13 item 7: evaluate counted 12 images, the folder holds 6 files",
    "folder:drop walk:symlink-outside":
        "issue 13 item 7: walked outside the folder: 0000_astronaut.jpg",
    "folder:evaluate --json:symlink-loop":
        "issue 13 item 7: evaluate counted 9 images, the folder holds 6 files",
    "folder:classify --json:same-files-twice":
        "issue 13 item 7: the same file twice: alias.jpg and 0001_coffee.jpg",
    "folder:compare --json:same-files-twice":
        "issue 13 item 7: the same file twice: alias.jpg and 0001_coffee.jpg",
    "folder:evaluate --json:same-files-twice":
        "issue 13 item 7: evaluate counted 10 images, the folder holds 6 files",
    "folder:train scan:same-files-twice":
        "issue 13 item 7: the same file twice: alias.jpg and 0001_coffee.jpg",
    "folder:drop walk:same-files-twice":
        "issue 13 item 7: the same file twice: alias.jpg and 0001_coffee.jpg",
    "folder:classify:invalid-utf8-names":
        "issue 13 item 9: traceback (3.946 s, 0.0 MB): UnicodeEncodeError: 'utf-8' codec can't encode "
        "characters in position 63-64: surrogates not allowed",
    "folder:classify:four-float-tiffs":
        "issue 13 item 6: over_memory (23.416 s, 1345.3 MB): error: float-01.tif: truncated or corrupt image "
        "data",
    "folder:classify --json:four-float-tiffs":
        "issue 13 item 6: over_memory (31.68 s, 887.5 MB): error: float-01.tif: not enough memory to decode "
        "9459x9459 pixels",
    "weights:weights import --model:bytearray-4e9":
        "issue 13 item 4: over_memory (0.136 s, 0.0 MB): error: bytearray_4e9.pth is not a valid PyTorch "
        "weights file (corrupt data, MemoryError)",
    "weights:weights import:bytearray-4e9":
        "issue 13 item 4: over_memory (0.05 s, 0.0 MB): error: bytearray_4e9.pth is not a valid PyTorch "
        "weights file (corrupt data, MemoryError)",
    "weights:classify --weights:bytearray-4e9":
        "issue 13 item 4: over_memory (0.028 s, 0.0 MB): error: bytearray_4e9.pth is not a valid PyTorch "
        "weights file (corrupt data, MemoryError)",
    "weights:bundle classify --model PATH:bytearray-4e9":
        "issue 13 item 3 (a path is a path; then item 4): the message does not name the file: 'error: unknown"
        " model 'w-bytearray_4e9' (known: alexnet, vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg13_bn, vgg16_bn,",
    "weights:weights import --model:stride0-1e11-elements":
        "issue 13 item 4: over_time (None s, None MB): child exit -24; stderr:",
    "weights:weights import:stride0-1e11-elements":
        "issue 13 item 4: over_time (None s, None MB): ess/core/weights.py', line 453 in import_weights",
    "weights:classify --weights:stride0-1e11-elements":
        "issue 13 item 4: over_time (None s, None MB): child exit -24; stderr:",
    "weights:bundle classify --model PATH:stride0-1e11-elements":
        "issue 13 item 3 (a path is a path; then item 4): the message does not name the file: 'error: unknown"
        " model 'w-stride0_1e11_elements' (known: alexnet, vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg13_bn, v",
    "weights:weights import --model:stride0-right-shape":
        "issue 13 item 4: handled (outcome ok), should be refused; stdout 'imported stride0_right_shape.pth "
        "as resnet18 weights: resnet18-f37072fd.pth/n'",
    "weights:weights import:stride0-right-shape":
        "issue 13 item 4: handled (outcome ok), should be refused; stdout 'imported stride0_right_shape.pth "
        "as resnet18 weights: resnet18-f37072fd.pth/n'",
    "weights:classify --weights:stride0-right-shape":
        "issue 13 item 4: handled (outcome ok), should be refused; stdout 'photo.jpg  [resnet18, decode 3 ms,"
        " infer 141 ms]/n   1. sweatshirt                         0.10%/n   ",
    "weights:bundle classify --model PATH:stride0-right-shape":
        "issue 13 item 3 (a path is a path; then item 4): the message does not name the file: 'error: unknown"
        " model 'w-stride0_right_shape' (known: alexnet, vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg13_bn, vgg",
    "weights:weights import --model:meta-tensors":
        "issue 13 item 4: handled (outcome ok), should be refused; stdout 'imported meta_tensors.pth as "
        "resnet18 weights: resnet18-f37072fd.pth/n'",
    "weights:weights import:meta-tensors":
        "issue 13 item 4: handled (outcome ok), should be refused; stdout 'imported meta_tensors.pth as "
        "resnet18 weights: resnet18-f37072fd.pth/n'",
    "weights:classify --weights:meta-tensors":
        "issue 13 item 4: traceback (0.09 s, 4.0 MB): NotImplementedError: Cannot copy out of meta tensor; no"
        " data! Please use torch.nn.Module.to_empty() instead of torch.nn.Mo",
    "weights:bundle classify --model PATH:meta-tensors":
        "issue 13 item 3 (a path is a path; then item 4): the message does not name the file: 'error: unknown"
        " model 'w-meta_tensors' (known: alexnet, vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg13_bn, vgg16_bn, ",
    "weights:weights import --model:one-meta-tensor":
        "issue 13 item 4: handled (outcome ok), should be refused; stdout 'imported one_meta_tensor.pth as "
        "resnet18 weights: resnet18-f37072fd.pth/n'",
    "weights:weights import:one-meta-tensor":
        "issue 13 item 4: handled (outcome ok), should be refused; stdout 'imported one_meta_tensor.pth as "
        "resnet18 weights: resnet18-f37072fd.pth/n'",
    "weights:classify --weights:one-meta-tensor":
        "issue 13 item 4: traceback (0.491 s, 60.5 MB): NotImplementedError: Cannot copy out of meta tensor; "
        "no data! Please use torch.nn.Module.to_empty() instead of torch.nn.",
    "weights:bundle classify --model PATH:one-meta-tensor":
        "issue 13 item 3 (a path is a path; then item 4): the message does not name the file: 'error: unknown"
        " model 'w-one_meta_tensor' (known: alexnet, vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg13_bn, vgg16_b",
    "weights:weights import --model:sparse-tensor":
        "issue 13 item 4: traceback (0.055 s, 53.0 MB): RuntimeError: norm_sparse currently does not support "
        "'dtype' argument",
    "weights:weights import:sparse-tensor":
        "issue 13 item 4: traceback (0.168 s, 55.2 MB): RuntimeError: norm_sparse currently does not support "
        "'dtype' argument",
    "weights:classify --weights:sparse-tensor":
        "issue 13 item 4: traceback (0.063 s, 32.6 MB): RuntimeError: norm_sparse currently does not support "
        "'dtype' argument",
    "weights:bundle classify --model PATH:sparse-tensor":
        "issue 13 item 3 (a path is a path; then item 4): the message does not name the file: 'error: unknown"
        " model 'w-sparse_tensor' (known: alexnet, vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg13_bn, vgg16_bn,",
    "weights:bundle classify --model PATH:int8-in-float-slot":
        "issue 13 item 3 (a path is a path; then item 4): the message does not name the file: 'error: unknown"
        " model 'w-int8_in_float_slot' (known: alexnet, vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg13_bn, vgg1",
    "weights:bundle classify --model PATH:transposed-shape":
        "issue 13 item 3 (a path is a path; then item 4): the message does not name the file: 'error: unknown"
        " model 'w-transposed_shape' (known: alexnet, vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg13_bn, vgg16_",
    "weights:bundle classify --model PATH:scalar-for-matrix":
        "issue 13 item 3 (a path is a path; then item 4): the message does not name the file: 'error: unknown"
        " model 'w-scalar_for_matrix' (known: alexnet, vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg13_bn, vgg16",
    "weights:bundle classify --model PATH:pickle-payload-torch-zip":
        "issue 13 item 3 (a path is a path; then item 4): the message does not name the file: 'error: unknown"
        " model 'w-pickle-payload-torch-zip' (known: alexnet, vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg13_bn",
    "weights:bundle classify --model PATH:pickle-payload-legacy-torch-file":
        "issue 13 item 3 (a path is a path; then item 4): the message does not name the file: 'error: unknown"
        " model 'w-pickle-payload-legacy-torch-file' (known: alexnet, vgg11, vgg13, vgg16, vgg19, vgg11_bn, ",
    "weights:bundle classify --model PATH:pickle-payload-plain-pickle":
        "issue 13 item 3 (a path is a path; then item 4): the message does not name the file: 'error: unknown"
        " model 'w-pickle-payload-plain-pickle' (known: alexnet, vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg13",
    "weights:bundle classify --model PATH:exec-payload-torch-zip":
        "issue 13 item 3 (a path is a path; then item 4): the message does not name the file: 'error: unknown"
        " model 'w-exec-payload-torch-zip' (known: alexnet, vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg13_bn, ",
    "weights:bundle classify --model PATH:zip-bomb-deflated-member":
        "issue 13 item 3 (a path is a path; then item 4): the message does not name the file: 'error: unknown"
        " model 'w-zip-bomb-deflated-member' (known: alexnet, vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg13_bn",
    "weights:bundle classify --model PATH:zip-bomb-member-claims-1.5-GB":
        "issue 13 item 3 (a path is a path; then item 4): the message does not name the file: 'error: unknown"
        " model 'w-zip-bomb-member-claims-1.5-GB' (known: alexnet, vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg",
    "weights:bundle classify --model PATH:zero-bytes":
        "issue 13 item 3 (a path is a path; then item 4): the message does not name the file: 'error: unknown"
        " model 'w-zero-bytes' (known: alexnet, vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg13_bn, vgg16_bn, vg",
    "weights:bundle classify --model PATH:truncated":
        "issue 13 item 3 (a path is a path; then item 4): the message does not name the file: 'error: unknown"
        " model 'w-truncated' (known: alexnet, vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg13_bn, vgg16_bn, vgg",
    "weights:bundle classify --model PATH:text-file":
        "issue 13 item 3 (a path is a path; then item 4): the message does not name the file: 'error: unknown"
        " model 'w-text-file' (known: alexnet, vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg13_bn, vgg16_bn, vgg",
    "weights:bundle classify --model PATH:JPEG-named-.pth":
        "issue 13 item 3 (a path is a path; then item 4): the message does not name the file: 'error: unknown"
        " model 'w-JPEG-named-.pth' (known: alexnet, vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg13_bn, vgg16_b",
    "weights:bundle classify --model PATH:not-a-state-dict":
        "issue 13 item 3 (a path is a path; then item 4): the message does not name the file: 'error: unknown"
        " model 'w-not-a-state-dict' (known: alexnet, vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg13_bn, vgg16_",
    "weights:bundle classify --model PATH:another-architecture":
        "issue 13 item 3 (a path is a path; then item 4): the message does not name the file: 'error: unknown"
        " model 'w-another-architecture' (known: alexnet, vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg13_bn, vg",
    "weights:bundle classify --model PATH:wrong-number-of-classes":
        "issue 13 item 3 (a path is a path; then item 4): the message does not name the file: 'error: unknown"
        " model 'w-wrong-number-of-classes' (known: alexnet, vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg13_bn,",
    "weights:bundle classify --model PATH:NaN-tensor":
        "issue 13 item 3 (a path is a path; then item 4): the message does not name the file: 'error: unknown"
        " model 'w-NaN-tensor' (known: alexnet, vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg13_bn, vgg16_bn, vg",
    "weights:bundle classify --model PATH:Inf-tensor":
        "issue 13 item 3 (a path is a path; then item 4): the message does not name the file: 'error: unknown"
        " model 'w-Inf-tensor' (known: alexnet, vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg13_bn, vgg16_bn, vg",
    "weights:bundle classify --model PATH:integer-tensor":
        "issue 13 item 3 (a path is a path; then item 4): the message does not name the file: 'error: unknown"
        " model 'w-integer-tensor' (known: alexnet, vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg13_bn, vgg16_bn",
    "weights:bundle classify --model PATH:complex-tensor":
        "issue 13 item 3 (a path is a path; then item 4): the message does not name the file: 'error: unknown"
        " model 'w-complex-tensor' (known: alexnet, vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg13_bn, vgg16_bn",
    "bundle:classify --model PATH:meta-fifo":
        "issue 13 item 5: over_time blocked: no CPU used for 6 s (6.118 s, 0.0 MB): TimeCapHit",
    "bundle:classify --model NAME:meta-fifo":
        "issue 13 item 5: over_time blocked: no CPU used for 6 s (6.002 s, 0.0 MB): TimeCapHit",
    "bundle:list_bundles:meta-fifo":
        "issue 13 item 5: over_time blocked: no CPU used for 6 s (6.005 s, 0.0 MB): TimeCapHit",
    "bundle:compare --models NAME:meta-fifo":
        "issue 13 item 5: over_time blocked: no CPU used for 6 s (6.16 s, 0.0 MB): TimeCapHit",
    "bundle:explain --model NAME:meta-fifo":
        "issue 13 item 5: over_time blocked: no CPU used for 6 s (6.02 s, 0.0 MB): TimeCapHit",
    "bundle:export:meta-fifo":
        "issue 13 item 5: over_time blocked: no CPU used for 6 s (6.036 s, 0.0 MB): TimeCapHit",
    "bundle:classify --model PATH:meta-dev-zero":
        "issue 13 item 5: over_memory (1.25 s, 1810.7 MB): MemoryError",
    "bundle:classify --model NAME:meta-dev-zero":
        "issue 13 item 5: over_memory (1.338 s, 1825.1 MB): MemoryError",
    "bundle:list_bundles:meta-dev-zero":
        "issue 13 item 5: over_memory (1.194 s, 1810.6 MB): MemoryError",
    "bundle:compare --models NAME:meta-dev-zero":
        "issue 13 item 5: over_memory (3.1 s, 1810.5 MB): MemoryError",
    "bundle:explain --model NAME:meta-dev-zero":
        "issue 13 item 5: over_memory (2.786 s, 1825.1 MB): MemoryError",
    "bundle:export:meta-dev-zero":
        "issue 13 item 5: over_memory (2.655 s, 1810.6 MB): MemoryError",
    "bundle:classify --model PATH:meta-dev-urandom":
        "issue 13 item 5: over_memory (6.55 s, 1810.6 MB): MemoryError",
    "bundle:classify --model NAME:meta-dev-urandom":
        "issue 13 item 5: over_memory (6.026 s, 1810.6 MB): MemoryError",
    "bundle:list_bundles:meta-dev-urandom":
        "issue 13 item 5: over_memory (6.722 s, 1810.5 MB): MemoryError",
    "bundle:compare --models NAME:meta-dev-urandom":
        "issue 13 item 5: over_memory (13.823 s, 1810.6 MB): MemoryError",
    "bundle:explain --model NAME:meta-dev-urandom":
        "issue 13 item 5: over_memory (13.211 s, 1810.6 MB): MemoryError",
    "bundle:export:meta-dev-urandom":
        "issue 13 item 5: over_memory (13.88 s, 1810.5 MB): MemoryError",
    "bundle:classify --model NAME:ansi-class-names":
        "issue 13 item 9: control characters or a forged line reach stdout: 'photo.jpg  [ansi-class-names, "
        "decode 2 ms, infer 13 ms]/n   1. cat/x1b[2J/x1b[31m                  ",
    "bundle:explain --model NAME:ansi-class-names":
        "issue 13 item 9: control characters or a forged line reach stdout: 'photo.jpg: layer layer4 [512, 1,"
        " 1], Grad-CAM of 'cat/x1b[2J/x1b[31m' (37.3%) at layer3/nwrote feat",
    "bundle:classify --model NAME:control-class-names":
        "issue 13 item 9: control characters or a forged line reach stdout: 'photo.jpg  [control-class-names,"
        " decode 2 ms, infer 9 ms]/n   1. cat/x00                           ",
    "bundle:explain --model NAME:control-class-names":
        "issue 13 item 9: control characters or a forged line reach stdout: 'photo.jpg: layer layer4 [512, 1,"
        " 1], Grad-CAM of 'cat/x00' (37.3%) at layer3/nwrote features.png, g",
    "bundle:classify --model PATH:few-classes":
        "issue 13 smaller: refused, should be handled: 'error: --topk must be between 1 and 3, got 5/n'",
    "bundle:classify --model NAME:few-classes":
        "issue 13 smaller: refused, should be handled: 'error: --topk must be between 1 and 3, got 5/n'",
    "bundle:compare --models NAME:few-classes":
        "issue 13 smaller: refused, should be handled: 'error: top-k must be between 1 and 3, got 5/n'",
    "checkpoint:train --resume:model-stride0":
        "issue 13 item 4: traceback (0.321 s, 124.3 MB): size mismatch for conv1.weight: copying a param with"
        " shape torch.Size([100000, 1000000]) from checkpoint, the shape in ",
    "checkpoint:train --resume:model-meta":
        "issue 13 item 4: traceback (0.209 s, 9.6 MB): While copying the parameter named 'fc.bias', whose "
        "dimensions in the model are torch.Size([2]) and whose dimensions in th",
    "checkpoint:train --resume:model-sparse":
        "issue 13 item 4: traceback (0.405 s, 44.9 MB): While copying the parameter named 'fc.weight', whose "
        "dimensions in the model are torch.Size([2, 512]) and whose dimensio",
    "checkpoint:train --resume:bytearray-4e9":
        "issue 13 item 4: over_memory (0.004 s, 0.0 MB): error: checkpoint.pt is not a readable checkpoint "
        "(damaged or cut short?): MemoryError:",
    "checkpoint:train --resume:settings-absurd":
        "issue 13 tracebacks: the message does not name the file: 'error: bad training settings: image_size "
        "must be between 16 and 1024 pixels, got -1/n'",
    "checkpoint:train --resume:settings-not-a-dict":
        "issue 13 tracebacks: the message does not name the file: 'error: bad training settings: not a JSON "
        "object/n'",
    "checkpoint:train --resume:optimizer-wrong":
        "issue 13 tracebacks: traceback (0.498 s, 0.1 MB): ValueError: loaded state dict has a different "
        "number of parameter groups",
}
