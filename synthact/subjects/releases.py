"""Any SAE of SAELens' pretrained-SAE directory as a subject, and its null stand-in.

``RELEASE/SAE_ID`` loads the SAE with its log-sparsity and the TransformerLens model its cfg names,
as SAELens trains on it (``from_pretrained_no_processing`` with the cfg's
``model_from_pretrained_kwargs``); ``hook_in`` is the SAE's hook, ``hook_out`` the last block's
``hook_resid_post``, prompts the first tokens of rows of its training dataset.
``null:RELEASE/SAE_ID`` makes the same calls on the null hub (`synthact.subjects.null_hub`), with
prompts from `null_prompt_stream`. A named subject may replace the model loading and the prompts
(`load_release`'s ``model`` and ``prompts``): the paper's subject is a release so replaced.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import importlib.util
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from synthact.core import hub_cache
from synthact.core.choices import PROMPT_LEN
from synthact.subjects import null_hub
from synthact.subjects.device import dtype_name
from synthact.subjects.hooks import resid_hook
from synthact.subjects.types import Sampler, Subject, SubjectSpec

if TYPE_CHECKING:
    import torch
    from sae_lens import SAE
    from transformer_lens import HookedTransformer
    from transformers import PreTrainedTokenizerBase


NULL_PREFIX = "null:"
ROWS_PER_PROMPT = 2
"""Dataset rows read per prompt asked for: room for rows too short and for repeated prefixes."""
SPARSITY_FILE = "sparsity.safetensors"
_KWARGS_WARNING = r"\s*This SAE has non-empty model_from_pretrained_kwargs"


@dataclass(frozen=True)
class Release:
    """An SAE of SAELens' directory: its names there (``release``, ``sae_id``), where it lives on
    the hub (``repo_id``, ``folder``), the directory's ``model`` and SAELens' ``conversion``
    loader for its format (None: SAELens' own, which may include the sparsity file)."""

    release: str
    sae_id: str
    repo_id: str
    folder: str
    model: str
    conversion: str | None

    @property
    def name(self) -> str:
        return f"{self.release}/{self.sae_id}"


@dataclass(frozen=True)
class ReleaseCfg:
    """What a subject takes from an SAE's cfg (SAELens' ``metadata``, overrides applied)."""

    model_name: str
    model_kwargs: dict
    hook_in: str
    d_in: int
    dataset_path: str | None
    prepend_bos: bool


ModelLoader = Callable[[ReleaseCfg, str, "torch.dtype"], "HookedTransformer"]
PromptSource = Callable[["HookedTransformer", Release, ReleaseCfg], Sampler]


def resolve_release(name: str) -> Release:
    """``RELEASE/SAE_ID`` (the id may contain ``/``) in SAELens' directory; no download.
    ValueError for an unknown release or id, listing nearby names."""
    release, _, sae_id = name.partition("/")
    entry = directory_entry(release)
    if sae_id not in entry.saes_map:
        ids = list(entry.saes_map)
        nearby = difflib.get_close_matches(sae_id, ids, n=5, cutoff=0.5)
        raise ValueError(
            f"SAELens release {release!r} has no SAE id {sae_id!r}; nearby ids: "
            f"{nearby or ids[:5]}; `synthact subjects {release}` lists its {len(ids)} ids"
        )
    return Release(
        release, sae_id, entry.repo_id, entry.saes_map[sae_id], entry.model, entry.conversion_func
    )


@dataclass(frozen=True)
class DirectoryEntry:
    """One release of SAELens' pretrained-SAE directory, the fields synthact reads: its hub
    ``repo_id``, ``model``, ``conversion_func``, and per SAE id its folder (``saes_map``) and
    Neuronpedia id (``neuronpedia_id``, None where it has none)."""

    release: str
    repo_id: str
    model: str
    conversion_func: str | None
    saes_map: dict[str, str]
    neuronpedia_id: dict[str, str | None]


DIRECTORY_FILE = "pretrained_saes.yaml"


@functools.cache
def directory() -> dict[str, DirectoryEntry]:
    """SAELens' pretrained-SAE directory, read from the ``pretrained_saes.yaml`` the package ships
    as SAELens reads it, without importing SAELens (seconds): a bad name is refused at once."""
    spec = importlib.util.find_spec("sae_lens")
    if spec is None or spec.origin is None:
        raise RuntimeError("SAELens is not installed: pip install sae-lens")
    path = Path(spec.origin).parent / DIRECTORY_FILE
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return {
        release: DirectoryEntry(
            release,
            value["repo_id"],
            value["model"],
            value.get("conversion_func"),
            {sae["id"]: _folder(sae["path"]) for sae in value["saes"]},
            {sae["id"]: sae.get("neuronpedia") for sae in value["saes"]},
        )
        for release, value in yaml.load(path.read_text(), Loader=loader).items()
    }


def _folder(path: str | int) -> str:
    return str(path) if isinstance(path, int) else path


def directory_entry(release: str) -> DirectoryEntry:
    entries = directory()
    if release not in entries:
        nearby = difflib.get_close_matches(release, list(entries), n=5, cutoff=0.5)
        raise ValueError(
            f"unknown SAELens release {release!r}; nearby releases: {nearby or 'none'}; "
            f"`synthact subjects` lists the {len(entries)} releases"
        )
    return entries[release]


# --- the two resolvers --------------------------------------------------------------------------


def release_spec(name: str) -> SubjectSpec:
    """``RELEASE/SAE_ID`` from the user's hub cache."""
    release = resolve_release(name)
    description = (
        f"{release.model}, SAE {release.sae_id} of SAELens release {release.release}, "
        "prompts from the SAE's training dataset"
    )
    loader = partial(load_release, release)
    return SubjectSpec(
        name,
        description,
        loader,
        preflight=partial(check_release_files, release),
        fingerprint=partial(release_fingerprint, release),
        hub=True,
    )


def release_fingerprint(release: Release) -> str | None:
    """The cached commits of the release's model and SAE repos (None before the first download).
    The prompts' dataset is named in the SAE's cfg, which the SAE repo's commit covers."""
    from transformer_lens.loading_from_pretrained import get_official_model_name

    model = ("model", get_official_model_name(release.model))
    return hub_cache.repo_fingerprint([model, ("model", release.repo_id)])


def null_release_spec(name: str) -> SubjectSpec:
    """``null:RELEASE/SAE_ID`` (``name`` without the prefix) from the null hub."""
    release = resolve_release(name)
    served = [sae.name for sae in null_hub.NULL_SAES]
    if release.name not in served:
        raise ValueError(
            f"the null hub has no stand-in for {release.name!r}; it serves "
            f"{', '.join(NULL_PREFIX + s for s in served)} (without 'null:' the real weights load)"
        )
    description = (
        f"random-weight stand-in for {release.name} from the null hub, same loading calls, "
        "pydoc prompts (null control)"
    )
    return SubjectSpec(
        NULL_PREFIX + name,
        description,
        partial(load_release, release, null=True),
        fingerprint=null_hub.fingerprint,
        random_weights=True,
    )


# --- loading ------------------------------------------------------------------------------------


def load_release(
    release: Release,
    device: str,
    dtype: torch.dtype,
    *,
    null: bool = False,
    model: ModelLoader | None = None,
    prompts: PromptSource | None = None,
) -> Subject:
    """The subject of ``release``: from the user's hub cache, or the null hub when ``null``.
    ``model`` and ``prompts`` replace the release's own model loading and prompt source."""
    load_model = model or _unprocessed_model
    prompt_source = prompts or (_null_stream_prompts if null else _dataset_prompts)
    where = (
        null_hub.use_null_hub(null_hub.null_sae(release.name)) if null else _offline_hint(release)
    )
    with where:
        cfg = release_cfg(release)
        if prompt_source is _dataset_prompts and cfg.dataset_path is None:
            raise ValueError(
                f"{release.name}: the SAE's cfg names no dataset_path to draw prompts from"
            )
        sae, log_sparsity = _load_sae(release, device, dtype)
        loaded = load_model(cfg, device, dtype).eval()
    sampler = prompt_source(loaded, release, cfg)
    hook_out = f"blocks.{loaded.cfg.n_layers - 1}.hook_resid_post"
    estimate = log_sparsity is None
    return Subject(
        release.name, loaded, sae, log_sparsity, sampler, cfg.hook_in, hook_out, estimate
    )


def release_cfg(release: Release) -> ReleaseCfg:
    """Read the SAE's cfg (one small file) and check it fits its model's config (another)."""
    from sae_lens.loading.pretrained_sae_loaders import load_sae_config_from_huggingface
    from transformer_lens.loading_from_pretrained import get_pretrained_model_config

    raw = load_sae_config_from_huggingface(release.release, release.sae_id)
    meta = sae_metadata(raw, release.name, "pick another release")
    cfg = ReleaseCfg(
        model_name=meta.get("model_name") or release.model,
        model_kwargs=dict(meta.get("model_from_pretrained_kwargs") or {}),
        hook_in=meta.get("hook_name") or "",
        d_in=raw["d_in"],
        dataset_path=meta.get("dataset_path"),
        prepend_bos=bool(meta.get("prepend_bos", True)),
    )
    model_cfg = get_pretrained_model_config(cfg.model_name)
    shape = (model_cfg.n_layers, model_cfg.d_model)
    check_fits(release.name, cfg.hook_in, cfg.d_in, cfg.model_name, *shape, "pick another SAE id")
    return cfg


def sae_metadata(raw: dict, name: str, fix: str) -> dict:
    """An SAE's cfg with SAELens' ``metadata`` merged in; ValueError ending in ``fix`` unless the
    SAE was trained on a TransformerLens ``HookedTransformer``."""
    meta = {**raw, **(raw.get("metadata") or {})}
    model_class = meta.get("model_class_name") or "HookedTransformer"
    if model_class != "HookedTransformer":
        raise ValueError(
            f"{name}: the SAE was trained on a {model_class}; synthact perturbs TransformerLens "
            f"HookedTransformer models only: {fix}"
        )
    return meta


def check_fits(
    name: str, hook_in: str, d_in: int, model: str, n_layers: int, d_model: int, fix: str
) -> None:
    """The SAE of subject ``name`` reads a residual-stream hook of ``model`` (``n_layers`` blocks)
    of its width ``d_model``; else ValueError ending in ``fix``, what to do."""
    hook = resid_hook(hook_in)
    if hook is None:
        raise ValueError(
            f"{name}: the SAE reads {hook_in!r}; the perturbation method needs an SAE on the "
            f"residual stream (blocks.L.hook_resid_pre or blocks.L.hook_resid_post): {fix}"
        )
    if hook[0] >= n_layers:
        raise ValueError(
            f"{name}: the SAE reads {hook_in!r} but {model} has {n_layers} blocks "
            f"(0..{n_layers - 1}): the SAE's cfg names a hook the model lacks; {fix}"
        )
    if d_in != d_model:
        raise ValueError(
            f"{name}: the SAE reads vectors of width d_in={d_in} but {model}'s residual stream "
            f"has d_model={d_model}: the SAE's cfg does not fit the model; {fix}"
        )


def check_release_files(release: Release) -> None:
    """Offline, the model's config and (in SAELens' standard layout) the SAE's cfg must be cached:
    without them nothing of the subject loads."""
    from transformer_lens.loading_from_pretrained import get_official_model_name

    files = [hub_cache.HubFile(get_official_model_name(release.model), "config.json")]
    if release.conversion is None:
        files.append(hub_cache.HubFile(release.repo_id, f"{release.folder}/cfg.json"))
    hub_cache.require_cached(files, release.name)


def _load_sae(release: Release, device: str, dtype: torch.dtype) -> tuple[SAE, torch.Tensor | None]:
    """The SAE and its log-sparsity ``[d_sae]`` float32 CPU (None: the release ships none)."""
    import torch
    from sae_lens import SAE

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", _KWARGS_WARNING)  # the model loaders honour them
        sae, _, log_sparsity = SAE.from_pretrained_with_cfg_and_sparsity(
            release.release, release.sae_id, device=device, dtype=dtype_name(dtype)
        )
    if log_sparsity is None:
        _check_ships_no_sparsity(release)
        return sae, None
    return sae, log_sparsity.detach().to("cpu", torch.float32)


def _unprocessed_model(cfg: ReleaseCfg, device: str, dtype: torch.dtype) -> HookedTransformer:
    """The model as SAELens trains on it: no weight processing, the cfg's keyword arguments."""
    from transformer_lens import HookedTransformer

    return HookedTransformer.from_pretrained_no_processing(
        cfg.model_name, device=device, dtype=dtype, **cfg.model_kwargs
    )


def _check_ships_no_sparsity(release: Release) -> None:
    """SAELens returns no sparsity both when the release has no file and on an offline cache miss;
    only the first may be estimated. The hub cache records a file's absence (``.no_exist``)."""
    from huggingface_hub import try_to_load_from_cache

    if release.conversion is not None:
        return  # SAELens reads no sparsity for this format
    filename = f"{release.folder}/{SPARSITY_FILE}"
    if try_to_load_from_cache(release.repo_id, filename) is None:
        raise RuntimeError(
            f"{release.name}: SAELens returned no sparsity and the hub cache "
            f"{hub_cache.hub_cache_dir()} does not record whether {release.repo_id}/{filename} "
            "exists (an offline cache miss looks the same); run once with network access"
        )


@contextlib.contextmanager
def _offline_hint(release: Release) -> Iterator[None]:
    """Offline, turn a hub cache miss into an error saying what to do."""
    try:
        yield
    except OSError as error:
        if not hub_cache.is_offline():
            raise
        fixes = [
            "run once with network access (HF_HUB_OFFLINE unset) to download it",
            "set HF_HOME to a cache that has it",
        ]
        if any(sae.name == release.name for sae in null_hub.NULL_SAES):
            fixes.append(f"use the offline stand-in --subject {NULL_PREFIX}{release.name}")
        raise RuntimeError(
            f"subject {release.name!r}: HF_HUB_OFFLINE=1 and a file it needs is not in the local "
            f"cache {hub_cache.hub_cache_dir()}: {error}\nTo fix: {', or '.join(fixes)}."
        ) from error


# --- prompts ------------------------------------------------------------------------------------


def bos_id(name: str, model: HookedTransformer, prepend_bos: bool) -> int | None:
    """The BOS token id to put before each prompt of subject ``name``, or None."""
    if not prepend_bos:
        return None
    if model.tokenizer is None or model.tokenizer.bos_token_id is None:
        raise ValueError(f"{name}: the SAE's cfg asks for BOS but the tokenizer has none")
    return model.tokenizer.bos_token_id


def _dataset_prompts(model: HookedTransformer, release: Release, cfg: ReleaseCfg) -> Sampler:
    """Prompts from the first rows of the SAE's training dataset, after BOS if the cfg says so."""
    bos = bos_id(release.name, model, cfg.prepend_bos)
    return partial(sample_dataset, cfg.dataset_path, model.tokenizer, bos)


def _null_stream_prompts(model: HookedTransformer, release: Release, cfg: ReleaseCfg) -> Sampler:
    """Distinct windows of the null prompt stream, after BOS if the SAE's cfg says so."""
    stream = null_hub.null_prompt_stream(model.tokenizer)
    bos = bos_id(release.name, model, cfg.prepend_bos)
    return partial(sample_stream, stream, bos, "the null prompt stream")


def sample_dataset(
    path: str,
    tokenizer: PreTrainedTokenizerBase,
    bos_id: int | None,
    n: int,
    generator: torch.Generator,
    length: int = PROMPT_LEN,
) -> torch.Tensor:
    """``n`` distinct prompts ``[n, length]`` from the first ``ROWS_PER_PROMPT * n`` rows of the
    dataset (a small download; the SAE trained on the whole set)."""
    from synthact.subjects.prompts import dataset_prefixes, read_dataset_rows, sample_rows

    try:
        rows = read_dataset_rows(path, ROWS_PER_PROMPT * n)
    except Exception as error:
        raise RuntimeError(
            f"cannot read prompts from the SAE's training dataset {path!r}: {error}. Its first "
            "rows are streamed whenever a run's prompts are not cached yet, which needs network "
            "access (HF_HUB_OFFLINE unset)"
        ) from error
    table = dataset_prefixes(rows, tokenizer, length, bos_id=bos_id)
    return sample_rows(
        table, n, generator, source=f"the first {len(rows)} rows of dataset {path!r}"
    )


def sample_stream(
    stream: torch.Tensor,
    bos_id: int | None,
    source: str,
    n: int,
    generator: torch.Generator,
    length: int = PROMPT_LEN,
) -> torch.Tensor:
    """``n`` distinct windows ``[n, length]`` of the token ``stream`` ``[n_tokens]`` (named
    ``source`` in errors)."""
    from synthact.subjects.prompts import sample_rows, window_table

    table = window_table(stream, length, bos_id=bos_id)
    return sample_rows(table, n, generator, source=source)
