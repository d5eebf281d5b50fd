"""Tests of sampling: shapes and lengths, determinism for a seed, grade and length checks, and
the files a saved sample leaves. Tiny untrained model, few DDIM steps, CPU."""
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from fmsnb.humanml3d import recover_joints
from fmsnb.mdm import MDM
from fmsnb.sample import generate, length_batches, save_sample, timesteps, write_folder
from fmsnb.text import CaptionCache
from test_train import MAX_LEN, FakeEncoder, tiny_diffusion, tiny_model

torch.set_num_threads(1)

MEAN = np.linspace(-1, 1, 263).astype(np.float32)
STD = np.linspace(0.5, 2, 263).astype(np.float32)


def sample(captions, lengths, model=None, **kw):
    kw = {"steps": 3, "mean": MEAN, "std": STD, "seed": 0, "batch_size": 2, "progress": False,
          **kw}
    return generate(model or tiny_model().eval(), tiny_diffusion(), CaptionCache(FakeEncoder()),
                    captions, lengths, **kw)


def test_shapes_lengths_and_determinism():
    captions = ["a person walks", "a person jumps", "a person waves"]
    lengths = [40, 12, MAX_LEN]
    out = sample(captions, lengths)
    assert [f.shape for f in out] == [(n, 263) for n in lengths]
    assert all(f.dtype == np.float32 and np.isfinite(f).all() for f in out)
    again = sample(captions, lengths)
    assert all(np.array_equal(a, b) for a, b in zip(out, again))
    other = sample(captions, lengths, seed=1)
    assert not np.allclose(out[0], other[0])
    # Denormalised: the model's normalised output scaled by std and shifted by mean.
    raw = sample(captions, lengths, mean=np.zeros(263), std=np.ones(263))
    assert all(np.allclose(f, r * STD + MEAN, atol=1e-5) for f, r in zip(out, raw))
    joints = recover_joints(out[0])
    assert joints.shape == (40, 22, 3) and np.isfinite(joints).all()


def test_steps_count_ddims_and_ddpm_runs_every_diffusion_step(monkeypatch):
    d = tiny_diffusion()
    assert timesteps(d, "ddim", 3) == d.timesteps("ddim", 3)
    assert timesteps(d, "ddpm", 3) == d.timesteps("ddpm") == list(range(49, -1, -1))
    visits = []
    step = d.ddpm_step
    monkeypatch.setattr(d, "ddpm_step", lambda x0, x_t, t, noise: visits.append(t) or step(
        x0, x_t, t, noise))
    generate(tiny_model().eval(), d, CaptionCache(FakeEncoder()), ["a person walks"], [8],
             sampler="ddpm", steps=3, mean=MEAN, std=STD, progress=False)
    assert visits == d.timesteps("ddpm")


LENGTHS = [40, 10, 38, 12]


def padded_widths(model) -> tuple[list[int], list[np.ndarray]]:
    """The frames each batch was padded to when `model` sampled motions of LENGTHS two at a
    time (the widths of `diffusion.sample`'s masks, in call order), and the motions."""
    diffusion, widths = tiny_diffusion(), []
    real_sample = diffusion.sample

    def recording(model, text, mask, *args, **kw):
        widths.append(mask.shape[1])
        return real_sample(model, text, mask, *args, **kw)
    diffusion.sample = recording                     # this diffusion's only
    out = generate(model, diffusion, CaptionCache(FakeEncoder()),
                   [f"caption {n}" for n in LENGTHS], LENGTHS, steps=2, mean=MEAN, std=STD,
                   batch_size=2, progress=False)
    return widths, out


def test_batches_are_formed_by_length_and_answers_keep_the_order():
    widths, out = padded_widths(tiny_model().eval())
    assert widths == [12, 40]            # in the order asked, the batches would pad to 40 and 38
    assert [len(f) for f in out] == LENGTHS


def test_attending_padding_samples_on_the_max_len_canvas():
    # issue 12, defect (a): MDM trains and samples a model whose padding attends on the whole
    # max_len canvas; padding such a model only to a batch's longest motion (lengths within
    # 25%) gave it a context it never saw in training.
    torch.manual_seed(0)
    model = MDM(replace(tiny_model().cfg, mask_padding=False)).eval()
    widths, out = padded_widths(model)
    assert widths == [MAX_LEN, MAX_LEN] and [len(f) for f in out] == LENGTHS
    # exactly MDM's way: the canvas sampled from the same seed, cut to the motion's length
    diffusion = tiny_diffusion()
    one = generate(model, diffusion, CaptionCache(FakeEncoder()), ["a person walks"], [40],
                   steps=2, mean=MEAN, std=STD, progress=False)[0]
    text = CaptionCache(FakeEncoder()).get(["a person walks"])
    canvas = diffusion.sample(model, text, torch.arange(MAX_LEN)[None] < 40, steps=2,
                         generator=torch.Generator().manual_seed(0), progress=False)
    np.testing.assert_allclose(one, canvas[0, :40].numpy() * STD + MEAN, atol=1e-5)


def test_length_batches_split_at_the_size_and_where_lengths_spread():
    def spans(lengths, size):
        return [(b.start, b.stop) for b in length_batches(lengths, size)]
    assert spans([40, 40, 40, 40, 40], 2) == [(0, 2), (2, 4), (4, 5)]
    assert spans([10, 12, 40, 44, 50, 196], 8) == [(0, 2), (2, 5), (5, 6)]   # 50 <= 1.25 * 40
    assert spans([7], 3) == [(0, 1)] and spans([], 3) == []


def test_grades_reach_the_grade_token():
    model = tiny_model(n_grades=3).eval()
    with torch.no_grad():              # an untrained embedding is random; make it matter
        model.grade_emb.weight.mul_(10)
    # Same seed, so the same noise per row: only the second row's grade differs.
    a = sample(["a person squats"] * 2, [16, 16], model=model, grades=[1, 3])
    b = sample(["a person squats"] * 2, [16, 16], model=model, grades=[1, 1])
    assert np.allclose(a[0], b[0], atol=1e-5) and not np.allclose(a[1], b[1], atol=1e-3)


@pytest.mark.parametrize("kw, message", [
    ({"lengths": [0]}, "lengths must be"),
    ({"lengths": [MAX_LEN + 1]}, f"1..{MAX_LEN}"),
    ({"lengths": [2.5]}, "whole numbers"),
    ({"lengths": [10, 10]}, "one length per caption"),
    ({"grades": [2]}, "no grade token"),
])
def test_bad_requests_raise(kw, message):
    kw = {"captions": ["a person walks"], "lengths": [10], **kw}
    with pytest.raises(ValueError, match=message):
        sample(**kw)


@pytest.mark.parametrize("grades", [[0], [4], [True], [1, 2]])
def test_bad_grades_raise(grades):
    with pytest.raises(ValueError, match="grade"):
        sample(["a person walks"], [10], model=tiny_model(n_grades=3).eval(), grades=grades)


def test_save_sample_writes_the_files(tmp_path, shared_data):
    features = np.load(shared_data / "humanml3d" / "new_joint_vecs" / "012314.npy")[:8]
    paths = save_sample(tmp_path / "out", "walk", features)
    assert np.array_equal(np.load(paths["features"]), features)
    expected = np.load(shared_data / "humanml3d" / "new_joints" / "012314.npy")[:8]
    assert np.allclose(np.load(paths["joints"]), expected, atol=1e-5)
    assert paths["animation"].stat().st_size > 0 and paths["animation"].stem == "walk"
    only_npy = save_sample(tmp_path / "b", "x", features, recover_joints(features), animate=False)
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["x_features.npy",
                                                                  "x_joints.npy"]
    assert "animation" not in only_npy
    with pytest.raises(ValueError, match="do not match"):
        save_sample(tmp_path / "c", "x", features, np.zeros((5, 22, 3)))


def _motions(n: int, shared_data) -> list:
    features = np.load(shared_data / "humanml3d" / "new_joint_vecs" / "012314.npy")[:20]
    return [features] * n


def test_write_folder_never_touches_a_users_files(tmp_path, shared_data):
    users = tmp_path / "thesis"
    users.mkdir()
    (users / "thesis.tex").write_text("x")
    with pytest.raises(ValueError, match="thesis.tex"):
        write_folder(users, _motions(1, shared_data), {"caption": "walk"}, animate=False)
    assert (users / "thesis.tex").read_text() == "x" and sorted(users.iterdir()) == [
        users / "thesis.tex"]
    a_file = tmp_path / "notes.txt"
    a_file.write_text("y")
    with pytest.raises(ValueError, match="is a file"):
        write_folder(a_file, _motions(1, shared_data), {}, animate=False)
    assert a_file.read_text() == "y"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_write_folder_leaves_a_users_sibling_folder_alone(tmp_path, shared_data):
    users = tmp_path / ".out.keep"
    users.mkdir()
    write_folder(tmp_path / "out", _motions(1, shared_data), {}, animate=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.keep", "out"]


def test_write_folder_replaces_only_its_own_earlier_samples(tmp_path, shared_data):
    out = tmp_path / "out"
    write_folder(out, _motions(3, shared_data), {"caption": "walk", "grade": 3}, animate=False)
    manifest = json.loads((out / "samples.json").read_text())
    assert manifest["grade"] == 3 and "sample02_joints.npy" in manifest["files"]
    write_folder(out, _motions(1, shared_data), {"caption": "run"}, animate=False)
    assert sorted(p.name for p in out.iterdir()) == [
        "caption.txt", "sample00_features.npy", "sample00_joints.npy", "samples.json"]
    assert (out / "caption.txt").read_text() == "run\n"
    (out / "mine.txt").write_text("z")                 # the user adds a file: hands off again
    with pytest.raises(ValueError, match="mine.txt"):
        write_folder(out, _motions(1, shared_data), {}, animate=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (write_folder(empty, _motions(1, shared_data), {}, animate=False)
            / "sample00_joints.npy").is_file()
