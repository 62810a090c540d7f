"""The recipe of ``trained-tiny`` (`synthact.subjects.trained_tiny`): a small GPT-2-style model
and its SAE, trained here on Python's own text.

The recipe (`Recipe`, `build`), seeded and run on one CPU thread:

1. Corpus: CPython's ``pydoc_data`` topics (one unit per topic, sorted keys) and the docstrings
   of the standard library's modules (one unit per ``.py`` file, sorted paths, tests and
   site-packages left out, each distinct docstring once), as `extract_corpus` reads them from the
   running interpreter. Every `HELDOUT_EVERY`-th unit is held out. Both texts differ between
   Python versions, so the repository ships them (``corpus/*.txt.gz``, extracted from CPython
   3.11.7) and the recipe reads those, checked against `CORPUS_SHA256`.
2. Tokenizer: a byte-level BPE of `Recipe.vocab_size` tokens trained on the training text by the
   ``tokenizers`` package, ``<|endoftext|>`` its only special token (BOS/EOS/padding; the model
   never sees it).
3. Model: a TransformerLens ``HookedTransformer`` (LayerNorm, learned positions, GELU) trained
   by `train_model`, AdamW on random windows of the training tokens, linear warm-up then cosine
   decay. ``transformer_lens.train`` is not used: it has no learning-rate decay and records no
   per-step loss, which the reproduction test compares.
4. SAE: a standard (ReLU, L1) SAE on `Recipe.hook`, trained by SAELens'
   ``LanguageModelSAETrainingRunner`` on the model's activations over the training tokens (rows
   of ``n_ctx`` tokens, no BOS, as the model was trained) and saved by it, with the log10 firing
   frequencies of its last ``feature_sampling_window`` as ``sparsity.safetensors``.

`build` writes the subject directory (`SUBJECT_DIR`): the SAE at its top, ``model/``, the
corpus, ``synthact.json`` (the model and the prompts, 10-token windows of the held-out text) and
``recipe.json`` (the recipe, the corpus hashes, versions and what was measured). Load it with
`synthact.subjects.local.load_local_subject`. Rebuild with ``synthact trained-tiny``.
"""

from __future__ import annotations

import ast
import dataclasses
import gzip
import hashlib
import json
import math
import platform
import shutil
import sysconfig
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from synthact.subjects.local import (
    MANIFEST,
    load_transformer,
    read_log_sparsity,
    save_transformer,
)
from synthact.subjects.prompts import read_shipped_text
from synthact.subjects.trained_tiny import SUBJECT_DIR

if TYPE_CHECKING:
    import torch
    from sae_lens import SAE
    from transformer_lens import HookedTransformer, HookedTransformerConfig
    from transformers import PreTrainedTokenizerBase

RECIPE_VERSION = 1
RECIPE_FILE = "recipe.json"
MODEL_DIR = "model"
CORPUS_FILES = {"train": "corpus/train.txt.gz", "heldout": "corpus/heldout.txt.gz"}
CORPUS_SHA256 = {
    "train": "f6c20325a15f97c1f91bfcb6d0b143e414533004edb91dce33d1f90077e8df2c",
    "heldout": "fdd82ea32e779aa4164f75cd799d3fe26b32c78be69b10361a9646046190311b",
}
"""SHA-256 of the shipped corpus texts (UTF-8), extracted from CPython 3.11.7."""
CORPUS_PYTHON = "3.11.7"
HELDOUT_EVERY = 10
STDLIB_SKIP = frozenset({"site-packages", "dist-packages", "test", "tests", "idle_test"})
EOS = "<|endoftext|>"
TRAJECTORY_STEPS = 8
"""Training steps the fast reproduction test replays (`train_model` with ``steps``)."""
METRIC_PROMPTS = 4096
RUNNER_WARNINGS = (
    "The training dataset contains fewer samples",
    "All samples in the training dataset have been exhausted",
    "To copy construct from a tensor",
)
"""Warnings of SAELens' runner that the recipe expects: it reads the training rows several times
(`Recipe.sae_training_tokens` exceeds the corpus), and copies each row into a new tensor."""


@dataclass(frozen=True)
class Recipe:
    """Every choice of the build; `build` records it in ``recipe.json``."""

    seed: int = 0
    vocab_size: int = 2048
    n_layers: int = 4
    d_model: int = 128
    n_heads: int = 4
    d_mlp: int = 512
    n_ctx: int = 128
    batch_size: int = 32
    steps: int = 400
    lr: float = 3e-3
    warmup_steps: int = 30
    weight_decay: float = 0.01
    hook: str = "blocks.1.hook_resid_pre"
    d_sae: int = 2048
    l1_coefficient: float = 1.5
    sae_lr: float = 3e-3
    sae_training_tokens: int = 4_096_000
    sae_batch_tokens: int = 1024


# --- corpus --------------------------------------------------------------------------------------


def extract_corpus() -> dict[str, str]:
    """``{"train": text, "heldout": text}`` from the running interpreter (see the module doc)."""
    units = [*_pydoc_topics(), *_stdlib_docstrings()]
    parts: dict[str, list[str]] = {"train": [], "heldout": []}
    for index, unit in enumerate(units):
        held_out = index % HELDOUT_EVERY == HELDOUT_EVERY - 1
        parts["heldout" if held_out else "train"].append(unit)
    return {name: "\n\n".join(texts) for name, texts in parts.items()}


def _pydoc_topics() -> list[str]:
    from pydoc_data.topics import topics

    return [topics[key] for key in sorted(topics)]


def _stdlib_docstrings() -> list[str]:
    """Per standard-library module file, its distinct docstrings (first occurrence only)."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    paths = sorted(
        path
        for path in stdlib.rglob("*.py")
        if not STDLIB_SKIP & set(path.relative_to(stdlib).parts[:-1])
    )
    seen: set[str] = set()
    units = []
    for path in paths:
        docs = [doc for doc in _docstrings(path) if doc not in seen]
        seen.update(docs)
        if docs:
            units.append("\n\n".join(docs))
    return units


def _docstrings(path: Path) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError):
            return []
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return [
        doc
        for node in ast.walk(tree)
        if isinstance(node, kinds)
        if (doc := ast.get_docstring(node))
    ]


def write_corpus(directory: Path, corpus: dict[str, str]) -> None:
    """Write the corpus texts as gzip files (no timestamp: same text, same bytes)."""
    for name, relative in CORPUS_FILES.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as file:
            file.write(corpus[name].encode("utf-8"))


def read_corpus(directory: Path = SUBJECT_DIR) -> dict[str, str]:
    """The shipped corpus texts, checked against `CORPUS_SHA256`."""
    return {
        name: read_shipped_text(directory / relative, CORPUS_SHA256[name], "corpus")
        for name, relative in CORPUS_FILES.items()
    }


def sha256(text: str) -> str:
    """Hex SHA-256 of ``text`` as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- tokenizer and model -------------------------------------------------------------------------


def train_tokenizer(text: str, vocab_size: int) -> PreTrainedTokenizerBase:
    """A byte-level BPE of ``vocab_size`` tokens trained on ``text`` (deterministic)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator([text], trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token=EOS, eos_token=EOS, pad_token=EOS
    )


def model_config(recipe: Recipe) -> HookedTransformerConfig:
    """GPT-2's architecture (LayerNorm, learned positions, GELU) at the recipe's size."""
    from transformer_lens import HookedTransformerConfig

    return HookedTransformerConfig(
        model_name="trained-tiny",
        n_layers=recipe.n_layers,
        d_model=recipe.d_model,
        d_head=recipe.d_model // recipe.n_heads,
        n_heads=recipe.n_heads,
        d_mlp=recipe.d_mlp,
        d_vocab=recipe.vocab_size,
        n_ctx=recipe.n_ctx,
        act_fn="gelu_new",
        normalization_type="LN",
        positional_embedding_type="standard",
        default_prepend_bos=False,
        device="cpu",
    )


def train_model(
    recipe: Recipe, tokens: torch.Tensor, steps: int | None = None
) -> tuple[HookedTransformer, list[float]]:
    """Train a fresh model on random ``n_ctx``-token windows of ``tokens`` ``[n_tokens]``.

    ``steps`` (default ``recipe.steps``) stops early: the first ``steps`` steps of the full run,
    exactly (the schedule depends on ``recipe.steps`` only).

    Returns:
        The model (eval mode, no tokenizer) and the training loss of each step (nats/token).
    """
    import torch
    from transformer_lens import HookedTransformer

    with _deterministic(recipe.seed):
        model = HookedTransformer(model_config(recipe))
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay
        )
        windows = torch.Generator().manual_seed(recipe.seed)
        losses = []
        for step in range(recipe.steps if steps is None else steps):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(recipe, step)
            starts = torch.randint(
                len(tokens) - recipe.n_ctx + 1, (recipe.batch_size,), generator=windows
            )
            batch = tokens[starts[:, None] + torch.arange(recipe.n_ctx)]
            loss = model(batch, return_type="loss")
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
    return model.eval(), losses


def learning_rate(recipe: Recipe, step: int) -> float:
    """Linear warm-up to ``recipe.lr``, then cosine decay to a tenth of it at the last step."""
    if step < recipe.warmup_steps:
        return recipe.lr * (step + 1) / recipe.warmup_steps
    progress = (step - recipe.warmup_steps) / max(1, recipe.steps - 1 - recipe.warmup_steps)
    return recipe.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * progress)))


def heldout_loss(model: HookedTransformer, tokens: torch.Tensor) -> float:
    """Mean next-token loss (nats) over the non-overlapping ``n_ctx`` windows of ``tokens``."""
    import torch

    with torch.no_grad():
        total, count = 0.0, 0
        for batch in context_rows(tokens, model.cfg.n_ctx).split(64):
            per_token = model(batch, return_type="loss", loss_per_token=True)
            total += per_token.double().sum().item()
            count += per_token.numel()
        return total / count


def unigram_loss(train: torch.Tensor, heldout: torch.Tensor, n_ctx: int, vocab_size: int) -> float:
    """Loss (nats) on the tokens `heldout_loss` predicts, of the training text's token frequencies
    (add-one smoothed): the baseline a model that ignores context reaches."""
    import torch

    counts = torch.bincount(train, minlength=vocab_size).double() + 1
    log_p = torch.log(counts / counts.sum())
    targets = context_rows(heldout, n_ctx)[:, 1:]
    return -log_p[targets].mean().item()


def context_rows(tokens: torch.Tensor, n_ctx: int) -> torch.Tensor:
    """The non-overlapping ``n_ctx`` windows of ``tokens`` ``[n_tokens]``: ``[n_rows, n_ctx]``."""
    n_rows = len(tokens) // n_ctx
    return tokens[: n_rows * n_ctx].reshape(n_rows, n_ctx)


# --- SAE -----------------------------------------------------------------------------------------


def train_sae(recipe: Recipe, model: HookedTransformer, tokens: torch.Tensor, out: Path) -> None:
    """Train an SAE on ``recipe.hook`` with SAELens' runner and save it into ``out``.

    The runner reads the model's activations over the ``n_ctx``-token rows of ``tokens`` (rows in
    a seeded random order, repeated as needed) and writes ``cfg.json``,
    ``sae_weights.safetensors``, ``sparsity.safetensors`` and ``runner_cfg.json``.
    """
    import datasets
    import torch
    from sae_lens import LanguageModelSAERunnerConfig, LanguageModelSAETrainingRunner
    from sae_lens.config import LoggingConfig
    from sae_lens.saes.standard_sae import StandardTrainingSAEConfig

    steps = recipe.sae_training_tokens // recipe.sae_batch_tokens
    rows = context_rows(tokens, recipe.n_ctx)
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(recipe.seed))
    dataset = datasets.Dataset.from_dict({"tokens": rows[order].tolist()})
    cfg = LanguageModelSAERunnerConfig(
        sae=StandardTrainingSAEConfig(
            d_in=recipe.d_model,
            d_sae=recipe.d_sae,
            l1_coefficient=recipe.l1_coefficient,
            l1_warm_up_steps=steps // 20,
            normalize_activations="expected_average_only_in",
        ),
        model_name="trained-tiny",
        model_from_pretrained_kwargs={},  # the model is local: nothing to pass from_pretrained
        hook_name=recipe.hook,
        is_dataset_tokenized=True,
        streaming=False,
        context_size=recipe.n_ctx,
        prepend_bos=False,
        training_tokens=recipe.sae_training_tokens,
        train_batch_size_tokens=recipe.sae_batch_tokens,
        store_batch_size_prompts=32,
        n_batches_in_buffer=256,
        n_batches_for_norm_estimate=20,
        lr=recipe.sae_lr,
        lr_warm_up_steps=steps // 20,
        lr_decay_steps=steps // 5,
        feature_sampling_window=steps // 4,
        dead_feature_window=steps // 4,
        seed=recipe.seed,
        device="cpu",
        logger=LoggingConfig(log_to_wandb=False),
        checkpoint_path=None,
        output_path=str(out),
        verbose=False,
    )
    with _deterministic(recipe.seed), warnings.catch_warnings():
        for expected in RUNNER_WARNINGS:
            warnings.filterwarnings("ignore", expected)
        runner = LanguageModelSAETrainingRunner(cfg, override_dataset=dataset, override_model=model)
        runner.run()
    _rewrite_json(out / "cfg.json")
    _rewrite_json(out / "runner_cfg.json", output_path=".")  # the build's folder is no part of it


def _rewrite_json(path: Path, **changes: object) -> None:
    """Rewrite a JSON file SAELens saved, keys sorted: its key order varies from run to run."""
    record = {**json.loads(path.read_text()), **changes}
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def sae_metrics(sae: SAE, acts: torch.Tensor) -> dict[str, float]:
    """Explained variance and mean L0 of ``sae`` on ``acts`` ``[N, d_in]``.

    Explained variance is ``1 - sum |x - sae(x)|^2 / sum |x - mean x|^2`` (SAELens' definition).
    """
    import torch

    with torch.no_grad():
        residual = spread = active = 0.0
        mean = acts.mean(dim=0)
        for chunk in acts.split(4096):
            latents = sae.encode(chunk)
            residual += (chunk - sae.decode(latents)).pow(2).sum().item()
            spread += (chunk - mean).pow(2).sum().item()
            active += (latents > 0).sum().item()
        return {"explained_variance": 1 - residual / spread, "l0": active / len(acts)}


def hook_activations(model: HookedTransformer, rows: torch.Tensor, hook: str) -> torch.Tensor:
    """Activations at ``hook`` of every position of ``rows`` ``[n, P]``: ``[n * P, d_model]``."""
    import torch
    from sae_lens.util import extract_stop_at_layer_from_tlens_hook_name

    with torch.no_grad():
        stop = extract_stop_at_layer_from_tlens_hook_name(hook)
        chunks = []
        for batch in rows.split(64):
            _, cache = model.run_with_cache(batch, names_filter=hook, stop_at_layer=stop)
            chunks.append(cache[hook].reshape(-1, model.cfg.d_model))
        return torch.cat(chunks)


# --- the build -----------------------------------------------------------------------------------


def build(out: Path | None = None, recipe: Recipe = Recipe()) -> dict:
    """Run the whole recipe on the shipped corpus; write the subject into ``out`` (default
    `SUBJECT_DIR`), replacing it at the end, all at once.

    Returns:
        What ``recipe.json`` records.
    """
    corpus = read_corpus()
    out = Path(out or SUBJECT_DIR).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{out.name}.tmp-", dir=out.parent))
    tmp.chmod(0o755)  # a data folder, readable as the one it replaces
    try:
        record = _build_into(tmp, recipe, corpus)
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return record


def _build_into(out: Path, recipe: Recipe, corpus: dict[str, str]) -> dict:
    from synthact.subjects.prompts import token_stream

    write_corpus(out, corpus)
    tokenizer = train_tokenizer(corpus["train"], recipe.vocab_size)
    train, heldout = (token_stream(tokenizer, corpus[name]) for name in ("train", "heldout"))

    start = time.perf_counter()
    model, losses = train_model(recipe, train)
    model_seconds = time.perf_counter() - start
    save_transformer(model, out / MODEL_DIR, tokenizer)
    model = load_transformer(out / MODEL_DIR)  # train the SAE on the model as it is shipped

    start = time.perf_counter()
    train_sae(recipe, model, train, out)
    sae_seconds = time.perf_counter() - start
    manifest = {"model": MODEL_DIR, "prompts": CORPUS_FILES["heldout"]}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")

    record = {
        "recipe_version": RECIPE_VERSION,
        "recipe": dataclasses.asdict(recipe),
        "corpus": _corpus_record(corpus, train, heldout),
        "model": {
            "parameters": sum(p.numel() for p in model.parameters()),
            "heldout_loss": heldout_loss(model, heldout),
            "unigram_loss": unigram_loss(train, heldout, recipe.n_ctx, recipe.vocab_size),
            "train_seconds": round(model_seconds, 1),
            "losses": losses,
        },
        "sae": {**measure_sae(out, model, heldout, recipe), "train_seconds": round(sae_seconds, 1)},
        "bytes": sum(path.stat().st_size for path in out.rglob("*") if path.is_file()),
        "versions": _versions(),
    }
    (out / RECIPE_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return record


def measure_sae(
    directory: Path, model: HookedTransformer, heldout: torch.Tensor, recipe: Recipe
) -> dict:
    """The saved SAE's explained variance and L0 on held-out activations: every position of the
    ``n_ctx`` rows, and the last position of `METRIC_PROMPTS` 10-token windows (as the
    experiments see them); and its dead latents (never fired in the runner's last window)."""
    import torch
    from sae_lens import SAE

    from synthact.subjects.activations import collect_activations
    from synthact.subjects.prompts import sample_windows

    sae = SAE.load_from_disk(directory)
    rows = context_rows(heldout, recipe.n_ctx)
    windows = sample_windows(heldout, METRIC_PROMPTS, torch.Generator().manual_seed(recipe.seed))
    log_sparsity = read_log_sparsity(directory)
    return {
        "heldout": sae_metrics(sae, hook_activations(model, rows, recipe.hook)),
        "prompts": sae_metrics(sae, collect_activations(model, windows, recipe.hook)),
        "dead_latents": int((log_sparsity <= -10).sum()),
    }


def _corpus_record(corpus: dict[str, str], train: torch.Tensor, heldout: torch.Tensor) -> dict:
    tokens = {"train": len(train), "heldout": len(heldout)}
    return {
        "source": "CPython's pydoc_data topics and standard-library docstrings "
        f"(synthact.build.trained_tiny.extract_corpus), extracted from CPython {CORPUS_PYTHON}; "
        f"every {HELDOUT_EVERY}th unit held out",
        **{
            name: {
                "file": CORPUS_FILES[name],
                "sha256": sha256(text),
                "characters": len(text),
                "tokens": tokens[name],
            }
            for name, text in corpus.items()
        },
    }


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    packages = ("torch", "transformer-lens", "sae-lens", "tokenizers", "transformers")
    return {
        "python": platform.python_version(),
        **{name: version(name) for name in packages},
        "machine": platform.machine(),
    }


@contextmanager
def _deterministic(seed: int) -> Iterator[None]:
    """Seed torch's global generator, one thread, deterministic kernels; all restored after."""
    import torch

    threads = torch.get_num_threads()
    strict = torch.are_deterministic_algorithms_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_num_threads(1)
        torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.set_num_threads(threads)
            torch.use_deterministic_algorithms(strict)


def summary(record: dict) -> str:
    """What a build measured, in a few lines."""
    model, sae = record["model"], record["sae"]
    lines = [
        f"model: {model['parameters']:,} parameters, held-out loss {model['heldout_loss']:.4f} "
        f"nats/token (unigram baseline {model['unigram_loss']:.4f}), trained in "
        f"{model['train_seconds']:.0f} s",
        *(
            f"SAE on {where}: explained variance {sae[where]['explained_variance']:.4f}, "
            f"L0 {sae[where]['l0']:.2f}"
            for where in ("heldout", "prompts")
        ),
        f"SAE: {sae['dead_latents']} dead latents, trained in {sae['train_seconds']:.0f} s",
        f"{record['bytes']:,} bytes",
    ]
    return "\n".join(lines)
