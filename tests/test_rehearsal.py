"""The rehearsal data root (fmsnb.standin.rehearsal) is read by each real reader of the package,
exactly as the `full` profile would read the releases, and the `rehearsal` profile points at it."""
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from fmsnb import corpora, dataset, fms, mdm_release, stages, table1, text
from fmsnb.captions import plain_captions
from fmsnb.config import load_profile
from fmsnb.t2m_evaluator import WordVectorizer, normalisation_problems
from fmsnb.humanml3d import FPS, mirror_caption
from fmsnb.mdm import MDM
from fmsnb.publish import book
from fmsnb.standin import rehearsal

REPO = Path(__file__).resolve().parents[1]
NAME = re.compile(r"M?\d{6}")
TIMED = re.compile(r"#(\d+\.\d+)#(\d+\.\d+)$")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return rehearsal.write_data_root(tmp_path_factory.mktemp("rehearsal") / "data")


@pytest.fixture(scope="module")
def cfg(data_root, tmp_path_factory):
    profile = load_profile("rehearsal", str(data_root), root=REPO)
    profile.run_path = tmp_path_factory.mktemp("runs")
    return profile


def test_humanml3d_reader_reads_timed_captions_and_mirrored_clips(cfg, data_root):
    root = corpora.humanml3d_root(cfg)          # the check the full profile makes
    assert root == data_root / rehearsal.HUMANML3D
    splits = {s: (root / f"{s}.txt").read_text().split()
              for s in ("train", "val", "test", "train_val", "all")}
    assert all(NAME.fullmatch(n) for n in splits["all"])
    assert sorted(splits["train"] + splits["val"]) == splits["train_val"]
    assert sorted(splits["train_val"] + splits["test"]) == splits["all"]
    for split in ("train", "val", "test"):
        names = set(splits[split])
        assert names == {n for n in names if n[0] != "M"} | {"M" + n for n in names if n[0] != "M"}
        data = dataset.read_split(root, split, progress=False)
        assert data.skipped == []
        assert data.summary["sub_clips"] > 0
        # the timed captions of 1 s (20 frames) are what the reader filters, nothing else
        assert data.filtered and all(reason == "20 frames" for _, reason in data.filtered)
    assert len(dataset.read_split(root, "test", progress=False).items) >= 32   # R-precision
    timed = [(path, m) for path in sorted((root / "texts").glob("*.txt"))
             for m in map(TIMED.search, path.read_text().splitlines())
             if m and m.groups() != ("0.0", "0.0")]
    assert timed
    path, match = timed[0]
    start, end = (float(x) for x in match.groups())
    features = np.load(root / "new_joint_vecs" / f"{path.stem}.npy")
    item = next(i for i in dataset.read_split(root, "all", progress=False).items
                if i.clip == path.stem and i.span == (int(start * FPS), int(end * FPS)))
    np.testing.assert_array_equal(item.motion, features[int(start * FPS):int(end * FPS)])
    for name in splits["all"][:20]:
        if name[0] == "M":
            continue
        original = dataset.read_captions(root / "texts" / f"{name}.txt")
        mirrored = dataset.read_captions(root / "texts" / f"M{name}.txt")
        assert [(mirror_caption(c.text), c.start, c.end) for c in original] == \
               [(c.text, c.start, c.end) for c in mirrored]
    mean, std = dataset.read_mean_std(root)     # HumanML3D's statistics cover every clip
    expected = dataset.mean_std(np.load(root / "new_joint_vecs" / f"{n}.npy")
                                for n in splits["all"])
    np.testing.assert_allclose(mean, expected[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std, expected[1], rtol=1e-5)


def test_fms_reader_reads_both_views_and_the_expert_scores(cfg):
    data = corpora.fms_dataset(cfg, progress=False)
    assert data.views == ("front", "side")
    # the only skips are the episodes whose experts disagree three ways (majority policy)
    assert all("disagree three ways" in reason for _, reason in data.skipped)
    assert len(data) + len(data.skipped) == rehearsal.SUBJECTS * len(fms.MOVEMENTS)
    for episode in data:
        assert set(episode.recordings) == {"front", "side"}
        assert episode.grade in (1, 2, 3) and len(episode.expert_grades) == 3
        front = episode.recordings["front"]
        assert front.joints.shape[1:] == (32, 3) and front.valid.any()
        fms.parse_file_name(front.path)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_clip_archive_is_what_clip_load_reads(data_root):
    path = data_root / rehearsal.CLIP_FILE
    # clip.load tries torch.jit.load first (cannot be imported here: it needs torchvision)
    archive = torch.jit.load(str(path), map_location="cpu")
    assert hasattr(archive, "encode_text") and hasattr(archive, "encode_image")
    state = archive.state_dict()
    assert {k: int(state[k]) for k in ("input_resolution", "context_length", "vocab_size")} == \
           {"input_resolution": 32, "context_length": 77, "vocab_size": 49408}
    assert state["transformer.resblocks.0.attn.in_proj_weight"].dtype == torch.float16
    assert state["text_projection"].dtype == torch.float16
    # clip.load(jit=False) builds the model from the shapes: ViT-B/32's text tower
    model_module, _ = text.clip_parts()
    built = model_module.build_model(dict(state))
    assert built.token_embedding.weight.shape == (49408, 512)
    assert built.positional_embedding.shape == (77, 512)
    assert built.text_projection.shape == (512, 512)
    assert built.transformer.layers == 12 and built.transformer.width == 512
    assert built.transformer.resblocks[0].attn.num_heads == 8
    # and our loader takes the same weights, in float32
    encoder = text.load_encoder("clip", path)
    assert encoder.dim == 512
    torch.testing.assert_close(encoder.model.text_projection, state["text_projection"].float(),
                               rtol=0, atol=0)
    vectors = encoder.encode(["a person walks forward", "someone jumps twice"])
    assert vectors.shape == (2, 512) and torch.isfinite(vectors).all()
    assert not torch.allclose(vectors[0], vectors[1])


def test_published_evaluator_loads_from_the_profiles_files(cfg, data_root):
    assert table1.uses_published_evaluator(cfg)
    ev = table1.get_evaluator(cfg, progress=False)
    assert ev.source.startswith("published T2M evaluator")
    checkpoint = torch.load(data_root / rehearsal.EVALUATOR_FILE, weights_only=False)
    assert {"epoch", "iter", "opt_text_encoder", "opt_motion_encoder"} <= set(checkpoint)
    for key, module in ev.modules().items():
        saved = checkpoint[key]
        assert {k: tuple(v.shape) for k, v in saved.items()} == rehearsal.EVALUATOR_SHAPES[key]
        for name, tensor in module.state_dict().items():
            torch.testing.assert_close(tensor, saved[name], rtol=0, atol=0)
    items = dataset.read_split(data_root / rehearsal.HUMANML3D, "test", progress=False).items
    texts = ev.embed_texts([item.captions[0].tokens for item in items])
    motions = ev.embed_motions([item.motion for item in items])
    assert texts.shape == motions.shape == (len(items), 512)
    assert np.isfinite(texts).all() and np.isfinite(motions).all()


def test_evaluator_statistics_relate_to_the_dataset_as_the_released_ones(data_root, shared_data):
    mean, std = dataset.read_mean_std(data_root / rehearsal.HUMANML3D)
    eval_mean = np.load(data_root / rehearsal.EVALUATOR_MEAN)
    eval_std = np.load(data_root / rehearsal.EVALUATOR_STD)
    assert eval_mean.shape == eval_std.shape == (263,) and eval_std.dtype == np.float64
    np.testing.assert_allclose(eval_mean, mean, rtol=1e-6)
    released = np.load(shared_data / "humanml3d" / "Std.npy") / \
        np.load(shared_data / "humanml3d" / "t2m_eval_std.npy")
    np.testing.assert_allclose(std / eval_std, released, rtol=0.02)
    assert normalisation_problems(eval_mean, eval_std, mean, std) == {}    # what loading checks


def test_glove_vocabulary_holds_every_caption_word(data_root):
    folder = data_root / rehearsal.GLOVE_DIR
    words = WordVectorizer.from_glove(folder)
    assert words.vectors.shape == (len(words.index), 300)
    with open(folder / "our_vab_words.pkl", "rb") as f:
        listed = pickle.load(f)
    assert listed == sorted(words.index, key=words.index.get)    # T2M reads words and idx
    assert {"sos", "eos", "unk"} <= set(listed)
    captions = [c for p in (data_root / rehearsal.HUMANML3D / "texts").glob("*.txt")
                for c in dataset.read_captions(p)]
    captions += [c for m in fms.MOVEMENTS for c in plain_captions(m)]
    missing = {t.partition("/")[0] for c in captions for t in c.tokens} - set(words.index)
    assert not missing
    vector, _ = words("squat/VERB")
    np.testing.assert_array_equal(vector, words.vectors[words.index["squat"]])


def test_rehearsal_profile_takes_the_full_profiles_code_paths(cfg, data_root, capsys):
    full = load_profile("full", str(data_root), root=REPO)
    assert cfg.text.encoder == full.text.encoder == "clip"
    assert cfg.text.weights == full.text.weights == rehearsal.CLIP_FILE
    assert cfg.evaluator_files.checkpoint == full.evaluator_files.checkpoint \
        == rehearsal.EVALUATOR_FILE
    assert (cfg.evaluator_files.glove, cfg.evaluator_files.mean, cfg.evaluator_files.std) == \
           (rehearsal.GLOVE_DIR, rehearsal.EVALUATOR_MEAN, rehearsal.EVALUATOR_STD)
    for part, key in (("model", "mask_padding"), ("model", "patch"), ("model", "dropout"),
                      ("model", "heads"), ("model", "ff_size"), ("model", "max_len"),
                      ("sampling", "sampler"), ("sampling", "guidance"), ("fms", "views"),
                      ("fms", "mirror"), ("evaluation", "replications"), ("pretrain", "lr"),
                      ("pretrain", "batch_size"), ("pretrain", "weight_decay"), ("text",
                      "side_words"), ("styles", None)):
        ours, theirs = getattr(cfg, part), getattr(full, part)
        if key is not None:
            ours, theirs = getattr(ours, key), getattr(theirs, key)
        assert ours == theirs, (part, key)
    assert cfg.model.mask_padding is False and cfg.sampling.sampler == "ddpm"
    assert book.dry_run("rehearsal", str(data_root), REPO) == 0
    assert "everything is in place" in capsys.readouterr().out


def test_mdm_release_is_what_the_import_reads_for_the_profile(cfg, data_root):
    path = data_root / rehearsal.MDM_FILE
    assert stages.release_file(cfg) == path
    state = torch.load(path, weights_only=True)
    assert not any(k.startswith("clip_model.") for k in state)     # MDM saves without CLIP
    assert {k.split(".layers.")[0] if ".layers." in k else k.rsplit(".", 1)[0]
            for k in state} == {"input_process.poseEmbedding", "embed_timestep.time_embed.0",
                                "embed_timestep.time_embed.2", "embed_text", "seqTransEncoder",
                                "output_process.poseFinal", "sequence_pos_encoder",
                                "embed_timestep.sequence_pos_encoder"}
    d = cfg.model.latent_dim
    assert state["seqTransEncoder.layers.0.linear1.weight"].shape == (1024, d)
    assert state["embed_text.weight"].shape == (d, 512)
    assert state["sequence_pos_encoder.pe"].shape == (rehearsal.MDM_POSITIONS, 1, d)
    model = stages.model_config(cfg, text.encoder_dim(cfg.text.encoder, cfg.text.side_words))
    weights, args = mdm_release.load_release(path, model, cfg.diffusion)
    assert args == rehearsal.MDM_ARGS and weights.keys() == MDM(model).state_dict().keys()


def test_writer_reuses_its_root_and_refuses_other_folders(data_root, tmp_path):
    clip_file = data_root / rehearsal.CLIP_FILE
    before = clip_file.stat().st_mtime_ns
    assert rehearsal.write_data_root(data_root) == data_root         # same settings: reused
    assert clip_file.stat().st_mtime_ns == before
    other = tmp_path / "real"
    (other / "HumanML3D").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"real: not empty and not a rehearsal data root"):
        rehearsal.write_data_root(other)
    assert rehearsal.main([str(other), "--quiet"]) == 2
    assert [p.name for p in other.iterdir()] == ["HumanML3D"]
