"""The dataset doctor's analysis: embeddings at the head's input (cached), and the findings.

Findings are checked on synthetic Gaussian blobs where the truth is known (flipped labels, planted
copies and far points); embeddings against an independent forward pass; the whole examination on a
small digit folder with copies planted across the split.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from core.data import Sample, scan_folder, split_samples
from core.doctor import embed, examine, findings
from core.doctor.report import DoctorReport, EmbeddingSource
from core.errors import Cancelled, StudioError
from core.zoo import get_spec
from tests.support.bundles import write_tiny_bundle
from tests.support.digits import write_digit_classes

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def blobs(per_class: int = 60, classes: int = 4, dim: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 3.0, (classes, dim))
    vectors = np.vstack([c + rng.normal(0.0, 1.0, (per_class, dim)) for c in centres]).astype(np.float32)
    return vectors, np.repeat(np.arange(classes), per_class)


# -- findings on synthetic embeddings ------------------------------------------------------------------


def test_label_issues_recover_flipped_labels_with_their_true_class() -> None:
    vectors, truth = blobs()
    rng = np.random.default_rng(1)
    flipped = rng.choice(len(truth), 12, replace=False)
    labels = truth.copy()
    labels[flipped] = (truth[flipped] + rng.integers(1, 4, len(flipped))) % 4
    classes = ["w", "x", "y", "z"]
    paths = [f"/f/{i}.png" for i in range(len(labels))]

    issues = findings.label_issues(vectors, labels, classes, paths, seed=0)

    found = [int(issue.path.split("/")[-1][:-4]) for issue in issues]
    hits = set(found) & set(flipped.tolist())
    assert len(hits) / len(found) >= 0.9  # precision
    assert len(hits) / len(flipped) >= 0.9  # recall
    for issue, index in zip(issues, found):
        assert issue.given == classes[labels[index]]
        if index in hits:
            assert issue.suggested == classes[truth[index]]
        assert 0 <= issue.given_probability < issue.confidence <= 1
    given = [issue.given_probability for issue in issues]
    assert given == sorted(given)  # ranked by self-confidence: least confident in its own class first


def test_out_of_sample_probabilities_handle_classes_smaller_than_the_folds() -> None:
    vectors, labels = blobs(per_class=12, classes=3)
    keep = np.r_[0:12, 12:15, 24:25]  # 12, 3 and 1 members: 3 folds, the singleton cannot be judged
    probs = findings.out_of_sample_probabilities(vectors[keep], labels[keep], 3, seed=0)
    assert probs.shape == (16, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_array_equal(probs[-1], [0.0, 0.0, 1.0])
    assert (probs[:15].argmax(axis=1) == labels[keep][:15]).mean() >= 0.9


def test_near_duplicates_need_both_similar_embeddings_and_similar_pictures() -> None:
    vectors, _ = blobs(per_class=20)
    rng = np.random.default_rng(2)
    signatures = findings.unit_rows(rng.normal(size=(len(vectors), 256)))
    digests = [f"d{i}" for i in range(len(vectors))]
    subsets = ["train"] * len(vectors)
    # 0 and 1: the same file twice; 2 and 3: an altered copy (both views barely move), in train and val;
    # 4 and 5: the network sees the same thing but the pictures differ: not a duplicate
    digests[1] = digests[0]
    vectors[1], signatures[1] = vectors[0], signatures[0]
    vectors[3] = vectors[2] + rng.normal(0, 0.01, vectors.shape[1])
    signatures[3] = findings.unit_rows((signatures[2] + rng.normal(0, 0.01, 256))[None], centre=False)[0]
    subsets[3] = "val"
    vectors[5] = vectors[4]
    paths = [f"/f/{i}.png" for i in range(len(vectors))]

    groups = findings.near_duplicates(vectors, signatures, digests, paths, subsets)

    assert [(g.paths, g.exact, g.across_split) for g in groups] == [
        (("/f/2.png", "/f/3.png"), False, True),  # across the split: first
        (("/f/0.png", "/f/1.png"), True, False),
    ]
    assert 0.95 < groups[0].similarity < 1.0 and groups[1].similarity == 1.0


def test_outliers_rank_far_points_first_with_scores_in_0_1() -> None:
    vectors, labels = blobs(per_class=50)
    rng = np.random.default_rng(3)
    far = rng.normal(0.0, 12.0, (5, vectors.shape[1])).astype(np.float32)
    vectors = np.vstack([vectors, far])
    labels = np.r_[labels, [0, 1, 2, 3, 0]]
    paths = [f"/f/{i}.png" for i in range(len(vectors))]

    found = findings.outliers(vectors, labels, ["w", "x", "y", "z"], paths)

    assert len(found) == 20  # at least 20 listed (5% of 205 is fewer)
    assert {o.path for o in found[:5]} == {f"/f/{i}.png" for i in range(200, 205)}
    scores = [o.score for o in found]
    assert scores == sorted(scores, reverse=True) and scores[0] == 1.0 and scores[-1] > 0
    assert found[0].given in {"w", "x", "y", "z"}


def test_map_is_deterministic_and_keeps_blobs_apart() -> None:
    vectors, labels = blobs(per_class=15, dim=16)
    first = findings.project_2d(vectors, seed=0)
    assert first.shape == (60, 2) and first.dtype == np.float32
    np.testing.assert_array_equal(first, findings.project_2d(vectors, seed=0))
    assert np.abs(first).max() == pytest.approx(1.0)
    centres = np.stack([first[labels == k].mean(axis=0) for k in range(4)])
    spread = max(float(np.linalg.norm(first[labels == k] - centres[k], axis=1).mean()) for k in range(4))
    gaps = [np.linalg.norm(centres[a] - centres[b]) for a in range(4) for b in range(a + 1, 4)]
    assert min(gaps) > 2 * spread
    tiny = findings.project_2d(vectors[:5], seed=0)  # too few for t-SNE: PCA alone
    assert tiny.shape == (5, 2) and np.isfinite(tiny).all()


# -- embeddings ----------------------------------------------------------------------------------------


def test_head_input_of_resnet18_is_the_pooled_features() -> None:
    torch.manual_seed(0)
    ours = get_spec("resnet18").build().eval()
    reference = torchvision.models.resnet18(weights=None).eval()
    reference.load_state_dict(ours.state_dict())
    batch = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        got = embed.head_inputs(ours, batch)
        r = reference
        x = r.maxpool(r.relu(r.bn1(r.conv1(batch))))
        expected = torch.flatten(r.avgpool(r.layer4(r.layer3(r.layer2(r.layer1(x))))), 1)
    assert got.shape == (2, 512)
    torch.testing.assert_close(got, expected)


def test_head_input_of_nin_conv_head_is_averaged_over_space() -> None:
    torch.manual_seed(0)
    model = get_spec("nin").build(num_classes=7).eval()
    assert dict(model.named_modules())["classifier.4"] is model.classifier[4]  # the 1x1 conv head
    batch = torch.randn(2, 3, 96, 96)
    with torch.inference_mode():
        got = embed.head_inputs(model, batch)
        maps = model.classifier[:4](model.features(batch))  # conv, ReLU, conv, ReLU: what the head gets
    assert got.shape == (2, 7)
    torch.testing.assert_close(got, maps.mean(dim=(2, 3)))


def test_signature_ignores_small_changes_but_not_other_pictures(tmp_path: Path) -> None:
    root = write_digit_classes(tmp_path / "d", ("a", "b"), 1)
    one, other = (Image.open(p).convert("RGB") for p in sorted(root.glob("*/*.png")))
    shifted = Image.fromarray(np.roll(np.asarray(one), 1, axis=1))
    sig = embed.signature(one)
    assert np.linalg.norm(sig) == pytest.approx(1.0, abs=1e-5) and abs(sig.mean()) < 1e-6
    assert sig @ embed.signature(one.resize((28, 28))) > 0.97
    assert sig @ embed.signature(shifted) > 0.9
    assert sig @ embed.signature(other) < 0.8
    assert not embed.signature(Image.new("RGB", (8, 8), "gray")).any()


def test_choose_source_never_downloads_and_says_when_the_map_is_random(fake_pretrained) -> None:
    plain = embed.choose_source(None)
    assert (plain.model, plain.kind) == ("resnet18", "random") and "random network" in plain.note
    named = embed.choose_source("googlenet")
    assert (named.model, named.kind) == ("googlenet", "random") and "GoogLeNet" in named.note
    fake_pretrained("googlenet")
    assert embed.choose_source(None) == EmbeddingSource("googlenet", "GoogLeNet", "pretrained")
    fake_pretrained("resnet18")
    assert embed.choose_source(None).model == "resnet18"  # preferred when several are here
    write_tiny_bundle("tiny")
    saved = embed.choose_source("tiny")
    assert (saved.model, saved.kind) == ("tiny", "saved")


@pytest.fixture
def small_folder(tmp_path: Path) -> Path:
    return write_digit_classes(tmp_path / "digits", ("a", "b", "c"), 8)


def test_embeddings_are_cached_per_content_and_a_corrupt_cache_is_rebuilt(small_folder: Path, tmp_path: Path) -> None:
    write_tiny_bundle("tiny")
    source = embed.choose_source("tiny")
    samples = scan_folder(small_folder).samples
    cache = tmp_path / "cache"
    seen: list[tuple[int, int]] = []

    first = embed.embed_samples(samples, source, cache_dir=cache, batch_size=5,
                                progress=lambda d, t: seen.append((d, t)))
    second = embed.embed_samples(samples, source, cache_dir=cache)

    assert (first.cached, second.cached, second.seconds) == (0, 24, 0.0)
    assert seen[0] == (0, 24) and seen[-1] == (24, 24) and len(seen) == 6
    assert first.vectors.shape == (24, 512) and first.rows == list(range(24))
    np.testing.assert_array_equal(first.vectors, second.vectors)
    np.testing.assert_array_equal(first.signatures, second.signatures)
    (file,) = cache.glob("*.npz")
    file.write_bytes(b"PK\x03\x04 not a zip")
    rebuilt = embed.embed_samples(samples, source, cache_dir=cache)
    assert rebuilt.cached == 0
    np.testing.assert_allclose(rebuilt.vectors, first.vectors, rtol=1e-5, atol=1e-6)
    renamed = [Sample(s.path + ".moved", s.label, s.digest) for s in samples[:3]]  # same contents elsewhere
    assert embed.embed_samples(renamed, source, cache_dir=cache).cached == 3


def test_unreadable_file_is_reported_by_path_and_skipped(small_folder: Path, tmp_path: Path) -> None:
    write_tiny_bundle("tiny")
    good = sorted(small_folder.glob("a/*.png"))[0]
    broken = small_folder / "a" / "broken.png"
    broken.write_bytes(good.read_bytes()[:120])  # the header reads, the pixels do not
    samples = scan_folder(small_folder).samples
    index = next(i for i, s in enumerate(samples) if s.path == str(broken))

    result = embed.embed_samples(samples, embed.choose_source("tiny"), cache_dir=tmp_path / "cache")

    assert [u["path"] for u in result.unreadable] == [str(broken)] and result.unreadable[0]["reason"]
    assert index not in result.rows and len(result.rows) == len(samples) - 1


def test_cancel_stops_between_batches(small_folder: Path, tmp_path: Path) -> None:
    write_tiny_bundle("tiny")
    cancel = threading.Event()
    samples = scan_folder(small_folder).samples

    def stop_after_first(done: int, total: int) -> None:
        if done >= 4:
            cancel.set()

    with pytest.raises(Cancelled):
        embed.embed_samples(samples, embed.choose_source("tiny"), cache_dir=tmp_path / "c", batch_size=4,
                            progress=stop_after_first, cancel=cancel)
    again = embed.embed_samples(samples, embed.choose_source("tiny"), cache_dir=tmp_path / "c")
    assert again.cached == 4  # the finished batch was kept


# -- the whole examination -----------------------------------------------------------------------------


def test_run_doctor_finds_copies_planted_across_the_split(tmp_path: Path) -> None:
    write_tiny_bundle("tiny")
    root = write_digit_classes(tmp_path / "digits", ("a", "b", "c"), 14)
    images = sorted(root.glob("b/*.png"))
    altered = root / "b" / "zz-altered.png"  # sorts last: the other files keep their places in the split
    Image.open(images[0]).resize((30, 30)).save(altered)  # a stand-in while the split is looked up
    split = split_samples(scan_folder(root), 0.2, 0)
    subset_of = {s.path: "train" for s in split.train} | {s.path: "val" for s in split.val}
    original = next(p for p in images if subset_of[str(p)] != subset_of[str(altered)])
    Image.open(original).resize((30, 30), Image.Resampling.BICUBIC).save(altered)  # same name: same split
    train_a = next(s for s in split.train if s.label == 0)
    exact = root / "a" / "exact-copy.png"
    shutil.copy(train_a.path, exact)
    stages: list[str] = []

    report = examine.run_doctor(root, model="tiny", cache_dir=tmp_path / "cache",
                                progress=lambda stage, d, t: stages.append(stage))

    assert stages[0] == "scanning" and "embedding" in stages and stages[-1] == "analysing"
    assert report.source.kind == "saved" and report.classes == ["a", "b", "c"]
    assert len(report.points) == 43 and report.cached == 0 and report.embed_seconds > 0
    assert {p.path: p.subset for p in report.points} == subset_of  # the split training would use
    groups = {frozenset(d.paths): d for d in report.duplicates}
    assert groups[frozenset({train_a.path, str(exact)})].exact  # the copy the scan set aside, found again
    near = groups[frozenset({str(original), str(altered)})]
    assert near.across_split and not near.exact
    assert report.duplicates[0].across_split
    assert len(report.duplicates) == 2  # nothing else in the folder looks the same
    assert len(report.outliers) == 4 and report.seconds >= report.embed_seconds  # a tenth of 43 images
    assert DoctorReport.from_json(report.to_json()) == report

    again = examine.run_doctor(root, model="tiny", cache_dir=tmp_path / "cache")
    assert again.cached == 43 and again.embed_seconds == 0.0
    assert again.points == report.points and again.duplicates == report.duplicates


def test_run_doctor_refuses_a_folder_it_cannot_judge(tmp_path: Path) -> None:
    one_class = write_digit_classes(tmp_path / "one", ("a",), 12)
    with pytest.raises(StudioError, match="at least two classes"):
        examine.run_doctor(one_class)
    few = write_digit_classes(tmp_path / "few", ("a", "b"), 3)
    with pytest.raises(StudioError, match="at least 10 images"):
        examine.run_doctor(few)


def test_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(examine, "findings", None)
    with pytest.raises(StudioError, match=r"pip install 'convnet-studio\[doctor\]'"):
        examine.run_doctor(tmp_path)


def test_estimate_grows_with_images_and_compute() -> None:
    small, large = examine.estimate_seconds(100, "resnet18", device="cpu"), examine.estimate_seconds(
        2000, "resnet18", device="cpu")
    assert 0 < small < large
    assert examine.estimate_seconds(2000, "vgg16", device="cpu") > large
    write_tiny_bundle("tiny")  # 32 px: far cheaper per image than the same network at 224 px
    assert examine.estimate_seconds(2000, "tiny", device="cpu") < large
