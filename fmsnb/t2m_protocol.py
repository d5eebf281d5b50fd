"""The Table 1 protocol: the five T2M metrics for ground truth and each model, with intervals.

One replication draws `samples` test clips, gives each a random caption and a crop to a multiple
of four frames (as the reference evaluation loader does), asks every model for a motion of the
same caption and length, embeds texts and motions with the evaluator, and computes R-precision,
multimodal distance, FID and diversity; multimodality comes from `mm_captions` captions with
`mm_repeats` generations each. As in MDM's evaluation, the ground truth is the whole test split,
passed over twice per replication, each pass giving every clip a fresh random caption and crop:
the first pass fits FID's reference Gaussian (every row's FID is taken against it), the second
is the "Ground truth" row, so its FID measures only the crops' and captions' randomness (MDM's
0.002) and its R-precision, multimodal distance and diversity are those of the whole split.
Every metric is repeated over `replications` and reported as mean +- 1.96 std / sqrt(n). A
profile whose sizes fall below the published protocol must say so (`allow_smaller`), and the
table carries that flag. `retrieval_check` runs the retrieval part on real pairs alone: an
evaluator far above chance on held-out clips has learned to match texts to motions.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from fmsnb import metrics
from fmsnb.config import REPLICATIONS, EvalConfig
from fmsnb.dataset import crop_length

# generate(captions, lengths, seed) -> de-normalised features, one (length_i, 263) per caption
Generator = Callable[[list[str], list[int], int], list[np.ndarray]]


# The table's first row (the test split itself) and its columns: the five metrics, R-precision
# at k = 1, 2, 3 counting as three.
GROUND_TRUTH = "Ground truth"
METRICS = ("R@1", "R@2", "R@3", "FID", "MM-Dist", "Diversity", "MModality")

def draw_test_set(items, n: int, rng: np.random.Generator):
    """n test clips, each with a random caption and a random crop to a multiple of 4 frames."""
    chosen = rng.choice(len(items), min(n, len(items)), replace=False)
    features, captions, tokens = [], [], []
    for i in chosen:
        item = items[i]
        caption = item.captions[rng.integers(len(item.captions))]
        length = crop_length(len(item.motion), rng)
        start = rng.integers(0, len(item.motion) - length + 1)
        features.append(item.motion[start:start + length])
        captions.append(caption.text)
        tokens.append(caption.tokens)
    return features, captions, tokens


def t2m_table(evaluator, items, generators: dict[str, Generator], cfg: EvalConfig,
              progress: bool = True, multimodality_too: bool = True) -> dict:
    """Rows GROUND_TRUTH and one per generator: {metric: (mean, ci)} plus the protocol used;
    multimodality_too=False leaves out MModality (its many extra generations). The ground-truth
    passes draw from their own generator per replication, so the models are asked the same
    captions whatever the size of the test split."""
    notes = cfg.check(len(items), multimodality_too)
    rng = np.random.default_rng(cfg.seed)
    runs = {name: {k: [] for k in METRICS if k != "MModality"}
            for name in [GROUND_TRUTH, *generators]}
    div_pairs = min(cfg.diversity_pairs, min(cfg.samples, len(items)))
    for rep in tqdm(range(cfg.replications), desc="replications", disable=not progress):
        real, captions, tokens = draw_test_set(items, cfg.samples, rng)
        lengths = [len(f) for f in real]
        text = evaluator.embed_texts(tokens)
        truth_rng = np.random.default_rng([cfg.seed, rep])
        reference = evaluator.embed_motions(draw_test_set(items, len(items), truth_rng)[0])
        truth, _, truth_tokens = draw_test_set(items, len(items), truth_rng)
        # row -> (text embeddings, motion embeddings, generator of its diversity pairs)
        rows = {GROUND_TRUTH: (evaluator.embed_texts(truth_tokens),
                               evaluator.embed_motions(truth), truth_rng)}
        for name, generate in generators.items():
            motions = generate(captions, lengths, cfg.seed + rep)
            rows[name] = (text, evaluator.embed_motions(motions), rng)
        for name, (text_emb, emb, pairs_rng) in rows.items():
            r = runs[name]
            for key, value in metrics.retrieval(text_emb, emb).items():
                r[key].append(value)
            r["FID"].append(metrics.fid(reference, emb))
            r["Diversity"].append(metrics.diversity(emb, pairs_rng, div_pairs))
    table = {name: {k: metrics.confidence_interval(v) for k, v in r.items()}
             for name, r in runs.items()}
    for name, generate in generators.items() if multimodality_too else ():
        table[name]["MModality"] = multimodality(evaluator, items, generate, cfg, rng, progress)
    return {"rows": table, "protocol": {**asdict(cfg), "diversity_pairs_used": div_pairs,
                                        "smaller_than_published": notes}}


def multimodality(evaluator, items, generate: Generator, cfg: EvalConfig,
                  rng: np.random.Generator, progress: bool = True) -> tuple[float, float]:
    """Multimodality over replications: mm_captions captions x mm_repeats generations each."""
    values = []
    reps = max(1, min(cfg.replications, REPLICATIONS[True]))     # as many as the reference
    for rep in tqdm(range(reps), desc="multimodality", disable=not progress):
        real, captions, _ = draw_test_set(items, cfg.mm_captions, rng)
        lengths = [len(f) for f in real]
        gens = generate([c for c in captions for _ in range(cfg.mm_repeats)],
                        [n for n in lengths for _ in range(cfg.mm_repeats)], cfg.seed + 1000 + rep)
        emb = evaluator.embed_motions(gens).reshape(len(captions), cfg.mm_repeats, -1)
        values.append(metrics.multimodality(emb, rng, cfg.mm_pairs))
    return metrics.confidence_interval(values)


def retrieval_check(evaluator, items, replications: int = 5, seed: int = 0) -> dict:
    """R@1..3 and MM-Dist of real (caption, motion) pairs of `items`, in batches of 32, averaged
    over `replications` draws of captions and crops, beside chance (k / 32): a held-out split
    far above chance shows the evaluator learned to match texts to motions."""
    rng = np.random.default_rng(seed)
    runs = {k: [] for k in ("R@1", "R@2", "R@3", "MM-Dist")}
    for _ in range(replications):
        feats, _, tokens = draw_test_set(items, len(items), rng)
        for key, value in metrics.retrieval(evaluator.embed_texts(tokens),
                                            evaluator.embed_motions(feats)).items():
            runs[key].append(value)
    batch = metrics.R_PRECISION_BATCH
    return {"pairs": len(items) // batch * batch, "replications": replications,
            **{k: metrics.confidence_interval(v) for k, v in runs.items()},
            "chance": {f"R@{k}": k / batch for k in (1, 2, 3)}}
