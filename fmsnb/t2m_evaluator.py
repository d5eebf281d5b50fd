"""The T2M text-motion evaluator (Guo et al. 2022): the embedding space of the five metrics.

Text side: per token a word vector (GloVe 300-d in the published evaluator) plus a projected
one-hot POS tag, a bidirectional GRU, and an MLP to 512-d. Motion side: a 1-D convolutional
"movement" encoder on the features without the four foot-contact dims (259 per frame, 4x shorter
output), then a bidirectional GRU over length // 4 steps, and an MLP to 512-d. Module and
parameter names follow the published checkpoint (`finest.tar`: text_encoder, motion_encoder,
movement_encoder) so that it loads as is when a user provides it with the GloVe files and its own
normalisation, which `normalisation_problems` checks against the dataset's (a wrong file would
corrupt every metric without failing). Without those files, `train_evaluator` trains the same
architecture contrastively on the corpus at hand, with a fixed random word-vector table over the
corpus vocabulary; numbers from such an evaluator are comparable only with each other, never with
the paper's, and the book says which produced each. `save_evaluator` writes a trained one to a
file with a stamp of what it was trained on, and `load_evaluator` reads it back.
"""
from __future__ import annotations

import pickle
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence
from tqdm.auto import tqdm

from fmsnb import atomic
from fmsnb.config import EvaluatorConfig
from fmsnb.dataset import mean_std
from fmsnb.humanml3d import FEATURE_GROUPS, N_FEATURES

POS_TAGS = ("VERB", "NOUN", "DET", "ADP", "NUM", "AUX", "PRON", "ADJ", "ADV",
            "Loc_VIP", "Body_VIP", "Obj_VIP", "Act_VIP", "Desc_VIP", "OTHER")
# Words the published word vectorizer tags with a "very important" class instead of their POS.
VIP_WORDS = {
    "Loc_VIP": {"left", "right", "clockwise", "counterclockwise", "anticlockwise", "forward",
                "back", "backward", "up", "down", "straight", "curve"},
    "Body_VIP": {"arm", "chin", "foot", "feet", "face", "hand", "mouth", "leg", "waist", "eye",
                 "knee", "shoulder", "thigh"},
    "Obj_VIP": {"stair", "dumbbell", "chair", "window", "floor", "car", "ball", "handrail",
                "baseball", "basketball"},
    "Act_VIP": {"walk", "run", "swing", "pick", "bring", "kick", "put", "squat", "throw", "hop",
                "dance", "jump", "turn", "stumble", "stop", "sit", "lift", "lower", "raise",
                "wash", "stand", "kneel", "stroll", "rub", "bend", "balance", "flap", "jog",
                "shuffle", "lean", "rotate", "spin", "spread", "climb"},
    "Desc_VIP": {"slowly", "carefully", "fast", "careful", "slow", "quickly", "happy", "angry",
                 "sad", "happily", "angrily", "sadly"},
}
MAX_TEXT_LEN = 20      # tokens kept per caption, before the added sos/eos
UNIT_LENGTH = 4        # the movement encoder shortens sequences by this factor
N_CONTACT_DIMS = 4


class WordVectorizer:
    """Token "word/POS" -> (word vector (300,), POS one-hot (15,)), as the published evaluator."""

    def __init__(self, vectors: np.ndarray, index: dict[str, int]):
        if "unk" not in index:
            raise ValueError("a word-vector table needs an 'unk' entry")
        self.vectors, self.index = vectors.astype(np.float32), index

    @classmethod
    def from_glove(cls, folder) -> "WordVectorizer":
        """The T2M GloVe files: our_vab_data.npy, our_vab_words.pkl, our_vab_idx.pkl."""
        folder = Path(folder)
        paths = [folder / f"our_vab_{n}" for n in ("data.npy", "words.pkl", "idx.pkl")]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"GloVe vocabulary files missing: {missing}; they come with "
                                    "the T2M evaluator release (glove/ folder)")
        vectors = np.load(paths[0])
        with open(paths[2], "rb") as f:
            index = pickle.load(f)
        if vectors.ndim != 2 or vectors.shape[1] != 300 or len(vectors) != len(index):
            raise ValueError(f"{paths[0]}: expected (vocabulary, 300) vectors matching "
                             f"{paths[2]}, got {vectors.shape} and {len(index)} words")
        return cls(vectors, index)

    @classmethod
    def from_vocabulary(cls, words, dim: int = 300, seed: int = 0) -> "WordVectorizer":
        """A fixed random vector per corpus word (the stand-in for GloVe).

        Components are drawn with standard deviation 0.4, which gives the vectors about the
        norm of GloVe's (~7), so that the word dominates the added POS projection as it does
        in the published evaluator.
        """
        vocab = sorted(set(words) | {"unk", "sos", "eos"})
        vectors = np.random.default_rng(seed).normal(scale=0.4, size=(len(vocab), dim))
        return cls(vectors, {w: i for i, w in enumerate(vocab)})

    def pos_onehot(self, tag: str) -> np.ndarray:
        v = np.zeros(len(POS_TAGS), np.float32)
        v[POS_TAGS.index(tag) if tag in POS_TAGS else POS_TAGS.index("OTHER")] = 1.0
        return v

    def __call__(self, token: str) -> tuple[np.ndarray, np.ndarray]:
        word, _, tag = token.partition("/")
        if word not in self.index:
            return self.vectors[self.index["unk"]], self.pos_onehot("OTHER")
        vip = next((k for k, words in VIP_WORDS.items() if word in words), None)
        return self.vectors[self.index[word]], self.pos_onehot(vip or tag)

    def encode(self, tokens_list: list[list[str]]):
        """Batched inputs: word vectors (B, L, 300), POS one-hots (B, L, 15), lengths (B,)."""
        seqs = [["sos/OTHER"] + list(t[:MAX_TEXT_LEN]) + ["eos/OTHER"] for t in tokens_list]
        L = max(len(s) for s in seqs)
        words = np.zeros((len(seqs), L, self.vectors.shape[1]), np.float32)
        pos = np.zeros((len(seqs), L, len(POS_TAGS)), np.float32)
        for i, seq in enumerate(seqs):
            for j, token in enumerate(seq + ["unk/OTHER"] * (L - len(seq))):
                words[i, j], pos[i, j] = self(token)
        lengths = torch.tensor([len(s) for s in seqs])
        return torch.from_numpy(words), torch.from_numpy(pos), lengths


class TextEncoderBiGRUCo(nn.Module):
    def __init__(self, word_size=300, pos_size=15, hidden_size=512, output_size=512):
        super().__init__()
        self.pos_emb = nn.Linear(pos_size, word_size)
        self.input_emb = nn.Linear(word_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True, bidirectional=True)
        self.output_net = nn.Sequential(nn.Linear(hidden_size * 2, hidden_size),
                                        nn.LayerNorm(hidden_size), nn.LeakyReLU(0.2),
                                        nn.Linear(hidden_size, output_size))
        self.hidden = nn.Parameter(torch.randn(2, 1, hidden_size))

    def forward(self, words, pos, lengths):
        x = self.input_emb(words + self.pos_emb(pos))
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, last = self.gru(packed, self.hidden.repeat(1, len(words), 1).contiguous())
        return self.output_net(torch.cat([last[0], last[1]], dim=-1))


class MovementConvEncoder(nn.Module):
    def __init__(self, input_size=259, hidden_size=512, output_size=512):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv1d(input_size, hidden_size, 4, 2, 1), nn.Dropout(0.2), nn.LeakyReLU(0.2),
            nn.Conv1d(hidden_size, output_size, 4, 2, 1), nn.Dropout(0.2), nn.LeakyReLU(0.2))
        self.out_net = nn.Linear(output_size, output_size)

    def forward(self, motion):
        """motion (B, T, 259) -> movements (B, T // 4, 512)."""
        return self.out_net(self.main(motion.permute(0, 2, 1)).permute(0, 2, 1))


class MotionEncoderBiGRUCo(nn.Module):
    def __init__(self, input_size=512, hidden_size=1024, output_size=512):
        super().__init__()
        self.input_emb = nn.Linear(input_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True, bidirectional=True)
        self.output_net = nn.Sequential(nn.Linear(hidden_size * 2, hidden_size),
                                        nn.LayerNorm(hidden_size), nn.LeakyReLU(0.2),
                                        nn.Linear(hidden_size, output_size))
        self.hidden = nn.Parameter(torch.randn(2, 1, hidden_size))

    def forward(self, movements, lengths):
        x = self.input_emb(movements)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, last = self.gru(packed, self.hidden.repeat(1, len(movements), 1).contiguous())
        return self.output_net(torch.cat([last[0], last[1]], dim=-1))


class Evaluator:
    """Text and motion embeddings (N, 512) in the evaluator's shared space."""

    def __init__(self, words: WordVectorizer, mean: np.ndarray, std: np.ndarray, source: str,
                 cfg: EvaluatorConfig | None = None):
        self.words, self.mean, self.std, self.source = words, mean, std, source
        self.cfg = cfg = cfg or EvaluatorConfig()
        self.text_encoder = TextEncoderBiGRUCo(words.vectors.shape[1], len(POS_TAGS),
                                               cfg.text_hidden, cfg.embed_dim)
        self.movement_encoder = MovementConvEncoder(len(mean) - N_CONTACT_DIMS,
                                                    cfg.movement_hidden, cfg.movement_hidden)
        self.motion_encoder = MotionEncoderBiGRUCo(cfg.movement_hidden, cfg.motion_hidden,
                                                   cfg.embed_dim)

    def modules(self):
        return {"text_encoder": self.text_encoder, "movement_encoder": self.movement_encoder,
                "motion_encoder": self.motion_encoder}

    def _motion_batch(self, features: list[np.ndarray]):
        """Normalised, contact-free, crop-to-4 padded motions (B, T, 259) and lengths (B,)."""
        lengths = [len(f) // UNIT_LENGTH * UNIT_LENGTH for f in features]
        if min(lengths) < UNIT_LENGTH:
            raise ValueError(f"motions need at least {UNIT_LENGTH} frames to embed")
        x = np.zeros((len(features), max(lengths), features[0].shape[1] - N_CONTACT_DIMS),
                     np.float32)
        for i, (f, n) in enumerate(zip(features, lengths)):
            x[i, :n] = ((f[:n] - self.mean) / self.std)[:, :-N_CONTACT_DIMS]
        return torch.from_numpy(x), torch.tensor(lengths)

    def _embed_motion(self, x, lengths):
        return self.motion_encoder(self.movement_encoder(x), lengths // UNIT_LENGTH)

    def _embed_text(self, tokens_list):
        return self.text_encoder(*self.words.encode(tokens_list))

    @torch.no_grad()
    def embed_motions(self, features: list[np.ndarray], batch: int = 256) -> np.ndarray:
        """features: de-normalised HumanML3D features (T_i, 263) -> embeddings (N, 512)."""
        self._eval()
        return np.concatenate([self._embed_motion(*self._motion_batch(features[i:i + batch]))
                               .numpy() for i in range(0, len(features), batch)])

    @torch.no_grad()
    def embed_texts(self, tokens_list: list[list[str]], batch: int = 256) -> np.ndarray:
        """tokens_list: "word/POS" token lists -> embeddings (N, 512)."""
        self._eval()
        return np.concatenate([self._embed_text(tokens_list[i:i + batch]).numpy()
                               for i in range(0, len(tokens_list), batch)])

    def _eval(self):
        for m in self.modules().values():
            m.eval()


def load_published(checkpoint, glove_dir, mean, std) -> Evaluator:
    """The published T2M evaluator: `finest.tar`, the GloVe folder and its mean/std (263,)."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"T2M evaluator checkpoint not found: {checkpoint} (the "
                                "release's t2m/text_mot_match/model/finest.tar)")
    state = atomic.torch_load(checkpoint, f"{checkpoint}: cannot be read as a torch checkpoint",
                              weights_only=False)
    ev = Evaluator(WordVectorizer.from_glove(glove_dir), np.asarray(mean), np.asarray(std),
                   source=f"published T2M evaluator ({checkpoint.name})")
    for key, module in ev.modules().items():
        if key not in state:
            raise ValueError(f"{checkpoint}: no '{key}' entry; keys are {sorted(state)}")
        try:
            module.load_state_dict(state[key])
        except RuntimeError as e:
            raise ValueError(f"{checkpoint}: '{key}' does not fit the T2M architecture: {e}") from e
    return ev



def save_evaluator(ev: Evaluator, path, stamp: str) -> Path:
    """Write the evaluator's modules, word table and mean/std to `path` atomically."""
    state = {"stamp": stamp, "source": ev.source, "cfg": asdict(ev.cfg),
             "vectors": torch.from_numpy(ev.words.vectors), "index": dict(ev.words.index),
             "mean": torch.from_numpy(np.asarray(ev.mean, np.float32)),
             "std": torch.from_numpy(np.asarray(ev.std, np.float32)),
             "modules": {k: m.state_dict() for k, m in ev.modules().items()}}
    atomic.torch_save(state, path)
    return Path(path)


def load_evaluator(path) -> tuple[Evaluator, str]:
    """An evaluator written by `save_evaluator`, and the stamp it was saved with."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no saved evaluator at {path}")
    bad = f"{path}: not a saved evaluator of this version"
    state = atomic.torch_load(path, bad)
    try:
        words = WordVectorizer(state["vectors"].numpy(), state["index"])
        ev = Evaluator(words, state["mean"].numpy(), state["std"].numpy(), state["source"],
                       EvaluatorConfig(**state["cfg"]))
        for key, module in ev.modules().items():
            module.load_state_dict(state["modules"][key])
    except (KeyError, TypeError, RuntimeError, ValueError) as e:    # a dict of another layout
        raise ValueError(f"{bad} ({e})") from e
    ev._eval()
    return ev, state["stamp"]

# T2M's evaluator was trained on features normalised with HumanML3D's Std, except that the root
# (angular and linear velocity, height) and foot-contact dims were divided by a further 25 (its
# `feat_bias`), so that they weigh more. Its mean lies within 0.23 dataset stds of the dataset's.
FEAT_BIAS = 25.0
BIASED_DIMS = np.r_[tuple(FEATURE_GROUPS[g] for g in (
    "root angular velocity", "root linear velocity", "root height", "foot contacts"))]
BIAS_TOLERANCE = 1.5     # the ratios found in the release differ from 1/25 and 1 by < 0.5%


def normalisation_problems(mean, std, dataset_mean, dataset_std) -> dict[str, str]:
    """What is wrong with the published evaluator's normalisation mean, std (263,) read from the
    files a profile names, given the dataset's own Mean/Std (263,): {"mean" or "std": problem},
    empty when they are the release's (t2m/Comp_v6_KLD01/meta/). Shape, finite values, a
    positive std, the mean within one dataset std of the dataset's Mean, and the std ratio to
    the dataset's Std: about 1/25 on the root and foot-contact dims and about 1 elsewhere."""
    found = {}
    for key, a in (("mean", mean), ("std", std)):
        a = np.asarray(a)
        if a.shape != (N_FEATURES,) or not np.issubdtype(a.dtype, np.number):
            found[key] = f"expected {N_FEATURES} numbers (shape ({N_FEATURES},)), got {a.shape}"
        elif not np.isfinite(a).all():
            found[key] = f"{(~np.isfinite(a)).sum()} values are NaN or infinite"
    if "std" not in found and (np.asarray(std) <= 0).any():
        found["std"] = f"{(np.asarray(std) <= 0).sum()} values are zero or negative"
    if found:
        return found
    far = np.abs(np.asarray(mean) - dataset_mean) > dataset_std
    if far.any():
        found["mean"] = (f"{far.sum()} dims lie more than one dataset std from the dataset's "
                         f"Mean (first: dim {np.flatnonzero(far)[0]}); not the evaluator's mean")
    ratio = np.asarray(std, np.float64) / dataset_std
    expected = np.ones(N_FEATURES)
    expected[BIASED_DIMS] = 1 / FEAT_BIAS
    off = np.abs(np.log(ratio / expected)) > np.log(BIAS_TOLERANCE)
    if off.any():
        biased = ratio[BIASED_DIMS]
        rest = np.delete(ratio, BIASED_DIMS)
        hint = (" (it looks like the dataset's own Std.npy)"
                if np.abs(np.log(biased)).max() < np.log(BIAS_TOLERANCE) else "")
        found["std"] = (f"not the evaluator's std{hint}: divided by the dataset's Std it should "
                        f"be about 1/{FEAT_BIAS:g} on the root (dims 0-3) and foot-contact "
                        f"(259-262) dims and about 1 elsewhere, but it is "
                        f"{biased.min():.3g}..{biased.max():.3g} there and "
                        f"{rest.min():.3g}..{rest.max():.3g} elsewhere")
    return found


def contrastive_loss(text, motion, margin: float, rng: np.random.Generator):
    """Pull matching (text, motion) pairs together; push shifted mismatches beyond `margin`."""
    shift = int(rng.integers(1, len(text)))
    positive = F.pairwise_distance(text, motion).pow(2).mean()
    negative = F.pairwise_distance(text, motion.roll(shift, 0))
    return positive + (margin - negative).clamp(min=0).pow(2).mean()


def train_evaluator(features: list[np.ndarray], tokens: list[list[str]], cfg: EvaluatorConfig,
                    progress: bool = True) -> Evaluator:
    """Train the evaluator architecture on (features (T_i, 263), caption tokens) pairs."""
    if len(features) != len(tokens) or len(features) < 2:
        raise ValueError(f"need matching motions and captions (at least 2), got "
                         f"{len(features)} and {len(tokens)}")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    mean, std = mean_std(features)
    words = WordVectorizer.from_vocabulary((t.partition("/")[0] for ts in tokens for t in ts),
                                           seed=cfg.seed)
    ev = Evaluator(words, mean, std, "evaluator trained on this run's corpus", cfg)
    params = [p for m in ev.modules().values() for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    for m in ev.modules().values():
        m.train()
    for _ in tqdm(range(cfg.epochs), desc="evaluator epochs", disable=not progress):
        order = rng.permutation(len(features))
        for i in range(0, len(order) - 1, cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            if len(idx) < 2:
                continue
            text = ev._embed_text([tokens[j] for j in idx])
            motion = ev._embed_motion(*ev._motion_batch([features[j] for j in idx]))
            loss = contrastive_loss(text, motion, cfg.margin, rng)
            opt.zero_grad()
            loss.backward()
            opt.step()
    ev._eval()
    return ev
