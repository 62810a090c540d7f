"""The paper's subject and its null control: the jb release at ``blocks.1.hook_resid_pre`` with
two overrides, the model with TransformerLens' default processing (as the paper loads it) and its
own prompts.

``gpt2-small`` draws prompts from one parquet shard of the pre-tokenized OpenWebText (the paper
draws from the whole set); ``null-gpt2`` loads the same names from the null hub, with 10-token
windows of the null prompt stream.
"""

from __future__ import annotations

import functools
from functools import partial
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from transformer_lens import HookedTransformer

from synthact.core.choices import PROMPT_LEN
from synthact.core.hub_cache import HubFile, repo_fingerprint, require_cached
from synthact.subjects.null_hub import GPT2_REPO, SAE_ID, SAE_RELEASE, SAE_REPO, null_prompt_stream
from synthact.subjects.null_hub import fingerprint as null_fingerprint
from synthact.subjects.releases import Release, ReleaseCfg, load_release, resolve_release
from synthact.subjects.types import Constants, Sampler, Subject, SubjectSpec

OPENWEBTEXT_REPO = "apollo-research/Skylion007-openwebtext-tokenizer-gpt2"
OPENWEBTEXT_SHARDS = ("data/train-00000-of-00073.parquet",)
"""The parquet files ``gpt2-small`` draws prompt rows from (the first of 73 shards)."""

GPT2_FILES = tuple(
    HubFile(GPT2_REPO, name)
    for name in ("config.json", "model.safetensors", "vocab.json", "merges.txt")
)
SAE_FILES = tuple(
    HubFile(SAE_REPO, f"{SAE_ID}/{name}")
    for name in ("cfg.json", "sae_weights.safetensors", "sparsity.safetensors")
)
OPENWEBTEXT_FILES = tuple(
    HubFile(OPENWEBTEXT_REPO, shard, repo_type="dataset") for shard in OPENWEBTEXT_SHARDS
)


def processed_gpt2(cfg: ReleaseCfg, device: str, dtype: torch.dtype) -> HookedTransformer:
    """GPT-2 small with TransformerLens' default processing (fold_ln, center_writing_weights,
    center_unembed), which includes what the release's cfg asks for."""
    from transformer_lens import HookedTransformer

    return HookedTransformer.from_pretrained(GPT2_REPO, device=device, dtype=dtype)


def openwebtext_prompts(model: HookedTransformer, release: Release, cfg: ReleaseCfg) -> Sampler:
    """The first tokens of rows drawn uniformly, without replacement, from `OPENWEBTEXT_SHARDS`."""
    from huggingface_hub import hf_hub_download

    from synthact.subjects.prompts import read_parquet_prefixes, sample_rows

    paths = [
        hf_hub_download(f.repo_id, f.filename, repo_type=f.repo_type) for f in OPENWEBTEXT_FILES
    ]
    prefixes = functools.cache(partial(read_parquet_prefixes, paths))
    source = f"{OPENWEBTEXT_REPO} {', '.join(OPENWEBTEXT_SHARDS)}"

    def sample(n: int, generator: torch.Generator, length: int = PROMPT_LEN) -> torch.Tensor:
        return sample_rows(prefixes(length), n, generator, source=source)

    return sample


def pydoc_window_prompts(model: HookedTransformer, release: Release, cfg: ReleaseCfg) -> Sampler:
    """Random windows of the null prompt stream, no BOS."""
    from synthact.subjects.prompts import sample_windows

    stream = null_prompt_stream(model.tokenizer)

    def sample(n: int, generator: torch.Generator, length: int = PROMPT_LEN) -> torch.Tensor:
        return sample_windows(stream, n, generator, length=length, source="CPython's pydoc topics")

    return sample


def _load(null: bool, device: str, dtype: torch.dtype) -> Subject:
    if not null:
        check_gpt2_small_files()  # offline: name every missing file before loading any
    prompts = pydoc_window_prompts if null else openwebtext_prompts
    release = resolve_release(f"{SAE_RELEASE}/{SAE_ID}")
    return load_release(release, device, dtype, null=null, model=processed_gpt2, prompts=prompts)


def check_gpt2_small_files() -> None:
    """Offline, every hub file ``gpt2-small`` needs must be cached."""
    require_cached([*GPT2_FILES, *SAE_FILES, *OPENWEBTEXT_FILES], "gpt2-small")


GPT2_SMALL = SubjectSpec(
    "gpt2-small",
    "GPT-2 small, jb residual SAE at blocks.1.hook_resid_pre, OpenWebText prompts (paper)",
    partial(_load, False),
    constants=Constants.paper(),
    preflight=check_gpt2_small_files,
    fingerprint=partial(
        repo_fingerprint,
        [("model", GPT2_REPO), ("model", SAE_REPO), ("dataset", OPENWEBTEXT_REPO)],
    ),
    hub=True,
)
NULL_GPT2 = SubjectSpec(
    "null-gpt2",
    "random-weight GPT-2 and SAE from a locally built hub, pydoc prompts (null control)",
    partial(_load, True),
    fingerprint=null_fingerprint,
    random_weights=True,
)
