"""Tests for fmsnb.text: the MiniLM and CLIP text encoders and the caption cache."""
import importlib.util
import socket
import warnings
import zlib

import numpy as np
import pytest
import torch

from fmsnb import text
from fmsnb.text import CaptionCache, load_encoder

needs_clip = pytest.mark.skipif(importlib.util.find_spec("clip") is None,
                                reason=f"openai-clip not installed ({text.CLIP_PIP})")

WALK, WALK_AHEAD, WAVE = "a person walks forward", "someone walks ahead", "a person waves the left hand"


@pytest.fixture(scope="session")
def minilm():
    """MiniLM loaded and run with the hub switched off and every socket connection refused."""
    def refuse(*args, **kwargs):
        raise OSError("network access attempted in an offline test")

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket, "getaddrinfo", refuse)
        encoder = load_encoder("minilm")
        encoder.encode([WALK])
    return encoder


class Counting:
    """Wraps an encoder and records every batch it is asked to encode."""

    def __init__(self, inner, key=None):
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.key = key or inner.key
        self.calls = []

    def encode(self, captions, batch_size=None, progress=False):
        self.calls.append(list(captions))
        return self.inner.encode(captions, batch_size, progress)


class HashEncoder:
    """A stand-in second encoder: a random vector seeded by the caption's CRC."""
    name, key, dim = "hash", "hash-test", 384

    def encode(self, captions, batch_size=None, progress=False):
        rows = [np.random.default_rng(zlib.crc32(c.encode())).normal(size=self.dim)
                for c in captions]
        return torch.tensor(np.array(rows), dtype=torch.float32).reshape(len(captions), self.dim)


def test_minilm_shape_dtype_determinism(minilm):
    emb = minilm.encode([WALK, WALK_AHEAD, WAVE])
    assert minilm.name == "minilm" and minilm.dim == 384 == text.encoder_dim("minilm")
    assert text.encoder_dim("minilm", side_words=True) == text.SideWords(minilm).dim
    assert emb.shape == (3, 384) and emb.dtype == torch.float32 and emb.device.type == "cpu"
    assert torch.allclose(emb.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.equal(emb, minilm.encode([WALK, WALK_AHEAD, WAVE]))
    assert torch.allclose(emb, minilm.encode([WALK, WALK_AHEAD, WAVE], batch_size=1), atol=1e-5)
    assert minilm.encode([]).shape == (0, 384)
    # The embedding must be usable as the input of a trained layer (no inference tensors).
    assert not emb.is_inference()
    layer = torch.nn.Linear(384, 2)
    layer(emb).sum().backward()
    assert layer.weight.grad is not None


def test_minilm_semantics(minilm):
    walk, ahead, wave = minilm.encode([WALK, WALK_AHEAD, WAVE])
    cos = torch.nn.functional.cosine_similarity
    assert cos(walk, ahead, dim=0) > cos(walk, wave, dim=0) + 0.1


def test_captions_must_be_a_list_of_strings(minilm):
    with pytest.raises(ValueError, match="single string"):
        minilm.encode(WALK)
    with pytest.raises(ValueError, match="strings"):
        CaptionCache(minilm).get([WALK, 3])
    with pytest.raises(ValueError, match="batch_size"):
        minilm.encode([WALK], batch_size=0)


def test_cache_encodes_each_caption_once(minilm):
    counting = Counting(minilm)
    cache = CaptionCache(counting)
    first = cache.get([WALK, WAVE, WALK])
    assert counting.calls == [[WALK, WAVE]]
    assert torch.equal(first[0], first[2])
    assert torch.allclose(first, minilm.encode([WALK, WAVE, WALK]), atol=1e-5)
    second = cache.get([WAVE, WALK_AHEAD, WALK])
    assert counting.calls == [[WALK, WAVE], [WALK_AHEAD]]
    assert torch.equal(second[0], first[1]) and torch.equal(second[2], first[0])
    for _ in range(3):
        cache.get([WALK, WAVE, WALK_AHEAD])
    assert len(counting.calls) == 2
    assert cache.precompute([WALK, "a person jumps", "a person jumps"]) == 1
    assert counting.calls[-1] == ["a person jumps"]
    assert (cache.stats.encoded, cache.stats.misses, cache.stats.hits) == (4, 4, 11)
    assert len(cache) == 4 and "a person jumps" in cache
    assert cache.get([]).shape == (0, 384)


def test_cache_persists_to_disk(minilm, tmp_path):
    captions = [WALK, WAVE, WALK_AHEAD]
    writer = CaptionCache(Counting(minilm), tmp_path)
    written = writer.get(captions)
    assert writer.path == tmp_path / f"{minilm.key}.pt" and writer.path.is_file()
    assert list(tmp_path.iterdir()) == [writer.path]  # the temporary file was renamed away

    counting = Counting(minilm)
    reader = CaptionCache(counting, tmp_path)
    assert reader.stats.loaded == 3
    assert torch.equal(reader.get(captions[::-1]), written.flip(0))
    assert counting.calls == []
    reader.get(["a person jumps", WALK])
    assert counting.calls == [["a person jumps"]]
    assert CaptionCache(minilm, tmp_path).stats.loaded == 4


def test_cache_keys_separate_encoders(minilm, tmp_path):
    by_minilm = CaptionCache(minilm, tmp_path).get([WALK, WAVE])
    by_hash = CaptionCache(HashEncoder(), tmp_path).get([WALK, WAVE])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{minilm.key}.pt", f"{HashEncoder.key}.pt"])
    assert not torch.allclose(by_minilm, by_hash)
    counting = Counting(HashEncoder())
    assert torch.equal(CaptionCache(counting, tmp_path).get([WALK, WAVE]), by_hash)
    assert counting.calls == []
    assert torch.equal(CaptionCache(minilm, tmp_path).get([WALK, WAVE]), by_minilm)


def test_cache_rejects_foreign_or_corrupt_files(minilm, tmp_path):
    CaptionCache(HashEncoder(), tmp_path).get([WALK])
    foreign = tmp_path / f"{minilm.key}.pt"
    (tmp_path / f"{HashEncoder.key}.pt").rename(foreign)
    with pytest.raises(ValueError, match="hash-test"):
        CaptionCache(minilm, tmp_path)
    foreign.write_bytes(b"not a cache")
    with pytest.raises(ValueError, match=str(foreign)):
        CaptionCache(minilm, tmp_path)


def test_unknown_encoder_lists_known_ones():
    with pytest.raises(ValueError, match="minilm, clip"):
        load_encoder("bert")


def test_minilm_takes_no_weights(tmp_path):
    with pytest.raises(ValueError, match="no weights"):
        load_encoder("minilm", weights=tmp_path / "x.pt")


def test_missing_clip_weights_names_the_path(tmp_path):
    missing = tmp_path / "ViT-B-32.pt"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        load_encoder("clip", weights=missing)


@pytest.fixture(scope="session")
def clip_vitb32(tmp_path_factory):
    """A ViT-B/32-shaped CLIP of random weights saved as a state dict, and a reference embedding.

    The reference is `encode_text` of the eager float32 model on tokens laid out by hand
    (start, BPE tokens, end, zeros to 77), independent of the encoder's own tokenizer code.
    """
    model_module, tokenizer_module = text.clip_parts()
    torch.manual_seed(0)
    model = model_module.CLIP(embed_dim=512, image_resolution=224, vision_layers=12,
                              vision_width=768, vision_patch_size=32, context_length=77,
                              vocab_size=49408, transformer_width=512, transformer_heads=8,
                              transformer_layers=12).eval()
    bpe = tokenizer_module.SimpleTokenizer()
    ids = [bpe.encoder["<|startoftext|>"], *bpe.encode(WALK), bpe.encoder["<|endoftext|>"]]
    tokens = torch.zeros(1, 77, dtype=torch.long)
    tokens[0, :len(ids)] = torch.tensor(ids)
    with torch.no_grad():
        reference = model.encode_text(tokens)[0]
    path = tmp_path_factory.mktemp("clip") / "vitb32_random.pt"
    torch.save(model.state_dict(), path)
    yield path, reference
    path.unlink()  # 600 MB: do not leave it in pytest's kept temp folders


@needs_clip
def test_clip_from_local_state_dict(clip_vitb32):
    path, reference = clip_vitb32
    encoder = load_encoder("clip", weights=path)
    assert encoder.name == "clip" and encoder.dim == 512 and encoder.key.startswith("clip-")
    assert text.encoder_dim("clip") == encoder.dim
    long_a = " ".join([WALK] * 6) + " and then jumps high"
    long_b = " ".join([WALK] * 6) + " and then sits down"
    emb = encoder.encode([WALK, WAVE, long_a, long_b], batch_size=3)
    assert emb.shape == (4, 512) and emb.dtype == torch.float32 and emb.device.type == "cpu"
    assert all(p.dtype == torch.float32 for p in encoder.model.parameters())
    assert torch.allclose(emb[0], reference, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(emb[0], emb[1])
    # MDM's truncation: only the first 20 BPE tokens count, so the differing tails vanish.
    tokens = encoder.tokenize([long_a])
    assert tokens.shape == (1, 77) and tokens[0, 21] == encoder.eot and not tokens[0, 22:].any()
    assert torch.equal(tokens, encoder.tokenize([long_b]))
    assert torch.allclose(emb[2], emb[3], atol=1e-5)
    assert torch.allclose(encoder.encode([WALK]), emb[:1], atol=1e-5)


@needs_clip
def test_clip_from_torchscript_archive(tmp_path):
    model_module, _ = text.clip_parts()
    torch.manual_seed(1)
    small = model_module.CLIP(64, 64, 1, 64, 32, 77, 49408, 64, 1, 2).eval()
    tokens = torch.zeros(1, 77, dtype=torch.long)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracing's deprecation and tracer notes are expected
        traced = torch.jit.trace(small, (torch.zeros(1, 3, 64, 64), tokens))
        torch.jit.save(traced, tmp_path / "small_jit.pt")
    encoder = load_encoder("clip", weights=tmp_path / "small_jit.pt")
    assert encoder.dim == 64 and len(encoder.model.transformer.resblocks) == 2
    caption_tokens = encoder.tokenize([WAVE])
    with torch.no_grad():
        expected = small.encode_text(caption_tokens)
    assert torch.allclose(encoder.encode([WAVE]), expected, rtol=1e-4, atol=1e-6)


@needs_clip
def test_clip_rejects_files_that_are_not_clip(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint")
    with pytest.raises(ValueError, match=str(garbage)):
        load_encoder("clip", weights=garbage)
    other = tmp_path / "other.pt"
    torch.save({"weight": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match="text_projection"):
        load_encoder("clip", weights=other)
    partial = tmp_path / "partial.pt"
    torch.save({"text_projection": torch.zeros(4, 4)}, partial)
    with pytest.raises(ValueError, match=str(partial)):
        load_encoder("clip", weights=partial)


@needs_clip
def test_random_clip_encoder_has_vit_b32_text_shape():
    encoder = text.random_clip_encoder()
    out = encoder.encode(["a person walks forward", "a person jumps"])
    assert out.shape == (2, 512) and out.dtype == torch.float32
    assert sum(p.numel() for p in encoder.model.transformer.parameters()) > 30_000_000


def test_side_words_tell_left_from_right(minilm, tmp_path):
    sided = text.SideWords(minilm)
    assert sided.dim == minilm.dim + 4 and sided.key != minilm.key
    left, right, both, none = sided.encode([
        "a person performs a hurdle step with their left leg up",
        "a person performs a hurdle step with their right leg up",
        "a person kneels on all fours and lifts the right arm together with the Left leg",
        "a person stands upright"])
    pooled = torch.nn.functional.cosine_similarity(left[:-4], right[:-4], dim=0)
    assert pooled > 0.95                              # the encoder alone barely tells them apart
    assert left[-4:].tolist() == [1, 0, 0, 0] and right[-4:].tolist() == [0, 1, 0, 0]
    assert both[-4:].tolist() == [0, 1, 1, 0] and none[-4:].tolist() == [0, 0, 0, 0]
    assert torch.allclose(left[:-4], minilm.encode(
        ["a person performs a hurdle step with their left leg up"])[0], atol=1e-5)
    cache = CaptionCache(sided, tmp_path)             # cached apart from the plain encoder's
    cache.precompute(["walk left"])
    assert (tmp_path / f"{sided.key}.pt").is_file() and cache.get(["walk left"]).shape == (1, 388)


def test_words_keep_each_token_of_the_caption(minilm, tmp_path):
    grades = ["a person performs a deep squat, FMS score 1",
              "a person performs a deep squat, FMS score 3"]
    worded = text.Words(text.SideWords(minilm), 16)
    assert worded.dim == text.encoder_dim("minilm", side_words=True, words=16) == 388 + 16 * 384
    one, three = worded.encode(grades)
    assert torch.allclose(one[:388], text.SideWords(minilm).encode(grades[:1])[0], atol=1e-5)
    rows_1, rows_3 = one[388:].reshape(16, 384), three[388:].reshape(16, 384)
    pieces = len(minilm.model.tokenizer(grades[0])["input_ids"])    # [CLS] ... "1" [SEP]
    assert (rows_1.abs().sum(1) > 0).sum() == pieces and not rows_1[pieces:].any()
    alike = torch.nn.functional.cosine_similarity(rows_1[:pieces], rows_3[:pieces], dim=1)
    pooled = torch.nn.functional.cosine_similarity(one[:384], three[:384], dim=0)
    # The grade's own row differs far more than the sentence vector does.
    assert alike[pieces - 2] < 0.8 < 0.95 < pooled
    short = text.Words(minilm, 4).encode(grades[:1])[0, 384:].reshape(4, 384)
    assert torch.allclose(short, rows_1[:4], atol=1e-5)              # longer captions are cut
    cache = CaptionCache(worded, tmp_path)
    assert cache.get(grades[:1]).shape == (1, worded.dim) and worded.key.endswith("+words16")
    with pytest.raises(ValueError, match="words must be >= 1"):
        text.Words(minilm, 0)


@needs_clip
def test_clip_words_end_with_encode_text(clip_vitb32):
    path, reference = clip_vitb32
    encoder = load_encoder("clip", weights=path)
    rows = encoder.encode_words([WALK, WAVE], words=30)
    assert rows.shape == (2, 30, 512)
    ends = (rows.abs().sum(-1) > 0).sum(1)             # start token .. end token
    assert torch.allclose(rows[0, ends[0] - 1], reference, atol=1e-4)
    assert torch.allclose(rows[1, ends[1] - 1], encoder.encode([WAVE])[0], atol=1e-4)
    assert not rows[0, ends[0]:].any()
