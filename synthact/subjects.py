"""Subjects: a model, the SAE at its input hook, the SAE's log-sparsity and a prompt source.

A subject is everything an experiment needs to know about "what is being studied". This module is
the one place that knows every kind of subject; `subject_spec` turns a name into a `SubjectSpec`
and `load_subject` loads it and checks the result with `validate_subject`. Names:

- the registry `SUBJECTS`: ``gpt2-small`` (the paper), ``null-gpt2`` (its random-weight control),
  ``planted`` and ``planted-null`` (a hand-built positive control and its null);
- ``RELEASE/SAE_ID``: any SAE of SAELens' pretrained-SAE directory, e.g.
  ``gpt2-small-res-jb/blocks.6.hook_resid_pre``. The SAE's cfg gives the TransformerLens model
  (loaded as SAELens trains on it: ``from_pretrained_no_processing`` with the cfg's
  ``model_from_pretrained_kwargs``), ``hook_in`` (the SAE's hook) and the prompts (the first
  tokens of rows of its training dataset, with BOS when the cfg says ``prepend_bos``);
  ``hook_out`` is the last block's ``hook_resid_post``. The release's ``sparsity.safetensors``
  gives the log-sparsity; a release without one is estimated from pool activations
  (`estimate_log_sparsity`);
- ``null:RELEASE/SAE_ID``: the same loading calls, reading the offline null hub (random weights
  under the release's repo and folder names, see `synthact.hub.NULL_SAES`), with prompts from
  `synthact.hub.null_prompt_stream`. The prefix makes the stand-in explicit: ``RELEASE/SAE_ID``
  never loads null weights, ``null:`` never loads real ones.

``gpt2-small`` and ``null-gpt2`` share one loading path (`load_jb_gpt2`): the unmodified
``HookedTransformer.from_pretrained("gpt2")`` and
``SAE.from_pretrained_with_cfg_and_sparsity("gpt2-small-res-jb", "blocks.1.hook_resid_pre")``
calls, reading the user's hub cache (``gpt2-small``) or the locally built null hub
(``null-gpt2``, see `synthact.hub`). When ``HF_HUB_OFFLINE=1`` the needed hub files are looked up
in the cache first, so a cache miss fails at once with a message saying what to do.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import torch
from huggingface_hub import hf_hub_download, try_to_load_from_cache
from sae_lens import SAE
from transformer_lens import HookedTransformer

from synthact import hub
from synthact.planted import HOOK_IN as PLANTED_HOOK_IN
from synthact.planted import HOOK_OUT as PLANTED_HOOK_OUT
from synthact.planted import build_planted, sample_planted_prompts
from synthact.prompts import (
    PROMPT_LEN,
    dataset_prefixes,
    read_dataset_rows,
    read_parquet_prefixes,
    sample_rows,
    sample_windows,
    window_table,
)

if TYPE_CHECKING:
    from sae_lens.loading.pretrained_saes_directory import PretrainedSAELookup
    from transformer_lens import HookedTransformerConfig
    from transformers import PreTrainedTokenizerBase

__all__ = [
    "NULL_PREFIX",
    "PROMPT_LEN",
    "SUBJECTS",
    "Constants",
    "Release",
    "Subject",
    "SubjectSpec",
    "describe_subjects",
    "estimate_log_sparsity",
    "load_jb_gpt2",
    "load_subject",
    "planted_subject",
    "resolve_release",
    "subject_spec",
    "validate_subject",
]

GPT2_HOOK_IN = hub.SAE_ID
GPT2_HOOK_OUT = "blocks.11.hook_resid_post"
OPENWEBTEXT_REPO = "apollo-research/Skylion007-openwebtext-tokenizer-gpt2"
OPENWEBTEXT_SHARDS = ("data/train-00000-of-00073.parquet",)
"""The dataset's parquet files ``gpt2-small`` draws prompt rows from (first of 73 shards)."""

NULL_PREFIX = "null:"
EXAMPLE_RELEASE = "gpt2-small-res-jb/blocks.6.hook_resid_pre"
ROWS_PER_PROMPT = 2
"""Dataset rows read per prompt asked for: room for rows too short and for repeated prefixes."""
SPARSITY_FILE = "sparsity.safetensors"
_RESID_HOOK = re.compile(r"blocks\.(\d+)\.hook_resid_(pre|post)")
_KWARGS_WARNING = r"\s*This SAE has non-empty model_from_pretrained_kwargs"

DTYPES = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
}
DEVICE_TYPES = ("cpu", "cuda", "mps")


@dataclass
class Subject:
    """A loaded subject.

    Attributes:
        name: the name it was loaded by, e.g. ``"gpt2-small"``.
        model: the transformer, in eval mode, on the chosen device and dtype.
        sae: the SAE reading ``hook_in`` (``sae.cfg.d_in == model.cfg.d_model``).
        log_sparsity: ``[d_sae]`` float tensor, ``log10(firing frequency + 1e-10)`` (on CPU), or
            None when ``estimate_sparsity``.
        sample_prompts: ``(n, generator, length=PROMPT_LEN) -> tokens [n, length]`` (int64, CPU),
            deterministic given the generator's state.
        hook_in: where the perturbation is applied (last position).
        hook_out: where the L2 distance is measured (last position).
        estimate_sparsity: the SAE's release ships no sparsity file: the experiments estimate it
            from the SAE's firing on pool activations (`estimate_log_sparsity`).
    """

    name: str
    model: HookedTransformer
    sae: SAE
    log_sparsity: torch.Tensor | None
    sample_prompts: Callable[..., torch.Tensor]
    hook_in: str
    hook_out: str
    estimate_sparsity: bool = False


@dataclass(frozen=True)
class Constants:
    """The scale-dependent constants of the method (REPLICATION.md, "Perturbation").

    Attributes:
        step: absolute step length (paper: 0.5).
        flat_slope: an L2 curve whose slopes never exceed this is flat for MS (paper: 0.02).
        ap_threshold: the L2 distance that ends an activation plateau (paper: 20).
        source: where the values come from, shown in the report's parameters.
    """

    step: float
    flat_slope: float
    ap_threshold: float
    source: str

    REFERENCE_NORM = 56.0
    """GPT-2 small's mean activation norm at ``blocks.1.hook_resid_pre`` (paper, section 4.1)."""

    @classmethod
    def paper(cls) -> Constants:
        """The paper's constants for GPT-2 small, whatever its measured activation norm."""
        return cls(step=0.5, flat_slope=0.02, ap_threshold=20.0, source="declared: the paper's")

    @classmethod
    def from_activation_norm(cls, norm: float) -> Constants:
        """The norm rule, for subjects that declare no constants.

        ``factor`` = ``norm`` / 56 rounded to one significant figure; the paper's constants are
        multiplied by it, so a subject whose activations are k times GPT-2's moves k times further
        per step and its curves are judged on a k times larger scale.
        """
        if not math.isfinite(norm) or norm <= 0:
            raise ValueError(f"activation norm must be positive and finite, got {norm}")
        ratio = norm / cls.REFERENCE_NORM
        exponent = math.floor(math.log10(ratio))
        factor = round(ratio / 10**exponent) * 10**exponent
        paper = cls.paper()
        return cls(
            step=paper.step * factor,
            flat_slope=paper.flat_slope * factor,
            ap_threshold=paper.ap_threshold * factor,
            source=f"norm rule: mean activation norm {norm:.4g} / 56 -> factor {factor:g}",
        )


@dataclass(frozen=True)
class SubjectSpec:
    """A subject's name, description and ``loader(device, dtype)`` that builds it.

    ``constants`` are the subject's declared `Constants`; None derives them from the measured
    activation norm (`Constants.from_activation_norm`). ``preflight()`` checks in milliseconds,
    without loading anything, that the subject can be loaded here, raising `RuntimeError` with
    what to do if not (e.g. offline without its hub files).
    """

    name: str
    description: str
    loader: Callable[[str, torch.dtype], Subject]
    constants: Constants | None = None
    preflight: Callable[[], None] = lambda: None


def subject_spec(name: str) -> SubjectSpec:
    """The spec of a registered name, ``RELEASE/SAE_ID`` or ``null:RELEASE/SAE_ID``.

    Reads only SAELens' directory (shipped with the package): no download.

    Raises:
        ValueError: unknown name, release or SAE id, or a ``null:`` name the null hub lacks.
    """
    if name in SUBJECTS:
        return SUBJECTS[name]
    null = name.startswith(NULL_PREFIX)
    release_name = name.removeprefix(NULL_PREFIX)
    if "/" not in release_name:
        raise ValueError(
            f"unknown subject {name!r}: neither a registered subject ({', '.join(SUBJECTS)}) nor "
            f"RELEASE/SAE_ID of a SAELens release (e.g. {EXAMPLE_RELEASE}); `synthact subjects` "
            "lists both"
        )
    release = resolve_release(release_name)
    if not null:
        description = (
            f"{release.model}, SAE {release.sae_id} of SAELens release {release.release}, "
            "prompts from the SAE's training dataset"
        )
        preflight = partial(_check_release_files, release)
        return SubjectSpec(name, description, partial(_load_release, release), preflight=preflight)
    served = [sae.name for sae in hub.NULL_SAES]
    if release.name not in served:
        raise ValueError(
            f"the null hub has no stand-in for {release.name!r}; it serves "
            f"{', '.join(NULL_PREFIX + s for s in served)} (without 'null:' the real weights load)"
        )
    description = (
        f"random-weight stand-in for {release.name} from the null hub, same loading calls, "
        "pydoc prompts (null control)"
    )
    return SubjectSpec(name, description, partial(_load_null_release, release))


def load_subject(name: str, device: str = "cpu", dtype: str | torch.dtype = "float32") -> Subject:
    """Load the subject ``name`` and check it with `validate_subject`.

    Args:
        name: a key of `SUBJECTS`, ``RELEASE/SAE_ID`` or ``null:RELEASE/SAE_ID``.
        device: ``cpu``, ``cuda`` (or ``cuda:N``), ``mps`` or ``auto`` (see `resolve_device`).
        dtype: ``float32`` (default), ``float16``, ``bfloat16`` or ``float64``, by name or as a
            ``torch.dtype``.

    Raises:
        ValueError: unknown subject, device or dtype, or an inconsistent subject.
        TypeError: ``dtype`` is neither a string nor a ``torch.dtype``.
        RuntimeError: the device is not available, or (offline) hub files are missing.
    """
    spec = subject_spec(name)
    device = resolve_device(device)
    torch_dtype = _resolve_dtype(dtype)
    subject = dataclasses.replace(spec.loader(device, torch_dtype), name=name)
    validate_subject(subject)
    return subject


def validate_subject(subject: Subject) -> None:
    """Check that the subject's parts fit together.

    Raises:
        ValueError: a hook is not in ``model.hook_dict``; the SAE width or hook does not match
            the model; ``log_sparsity`` is missing (unless estimated), not ``[d_sae]``, off the
            CPU or not finite; the SAE has NaN weights.
        TypeError: ``log_sparsity`` is not a tensor.
    """
    model, sae = subject.model, subject.sae
    for role in ("hook_in", "hook_out"):
        hook = getattr(subject, role)
        if hook not in model.hook_dict:
            nearby = difflib.get_close_matches(hook, list(model.hook_dict), n=5, cutoff=0.6)
            raise ValueError(
                f"subject {subject.name!r}: {role} {hook!r} is not a hook of the model; "
                f"nearby valid names: {nearby or sorted(model.hook_dict)[:5]}"
            )
    if sae.cfg.d_in != model.cfg.d_model:
        raise ValueError(
            f"subject {subject.name!r}: the SAE reads vectors of width d_in={sae.cfg.d_in} but the "
            f"model's residual stream has d_model={model.cfg.d_model}"
        )
    sae_hook = sae.cfg.metadata.hook_name
    if sae_hook is not None and sae_hook != subject.hook_in:
        raise ValueError(
            f"subject {subject.name!r}: the SAE was trained on {sae_hook!r} but hook_in is "
            f"{subject.hook_in!r}"
        )
    if subject.estimate_sparsity:
        if subject.log_sparsity is not None:
            raise ValueError(f"subject {subject.name!r}: log_sparsity given but marked estimated")
    else:
        _check_log_sparsity(subject.name, subject.log_sparsity, sae.cfg.d_sae)
    for param_name, param in sae.named_parameters():
        if torch.isnan(param).any():
            raise ValueError(f"subject {subject.name!r}: SAE parameter {param_name} contains NaN")


def _check_log_sparsity(name: str, log_sparsity: torch.Tensor | None, d_sae: int) -> None:
    what_to_do = (
        "the subject's loader must return log10(firing frequency + 1e-10) per SAE latent "
        "(for a SAELens release: its sparsity.safetensors, key 'sparsity')"
    )
    if log_sparsity is None:
        raise ValueError(f"subject {name!r} has no log_sparsity; {what_to_do}")
    if not isinstance(log_sparsity, torch.Tensor):
        raise TypeError(
            f"subject {name!r}: log_sparsity must be a torch.Tensor, got "
            f"{type(log_sparsity).__name__}; {what_to_do}"
        )
    if log_sparsity.shape != (d_sae,):
        raise ValueError(
            f"subject {name!r}: log_sparsity has shape {tuple(log_sparsity.shape)}, the SAE has "
            f"d_sae={d_sae} latents; {what_to_do}"
        )
    if log_sparsity.device.type != "cpu":
        raise ValueError(f"subject {name!r}: log_sparsity must be on the CPU")
    if not torch.isfinite(log_sparsity).all():
        raise ValueError(f"subject {name!r}: log_sparsity has non-finite values; {what_to_do}")


@torch.no_grad()
def estimate_log_sparsity(sae: SAE, acts: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """``log10(firing frequency + 1e-10)`` of each latent of ``sae`` on ``acts`` ``[N, d_in]``.

    The frequency is the fraction of the N activations on which the latent is positive.

    Returns:
        ``[d_sae]`` float32 on CPU.
    """
    if acts.ndim != 2 or len(acts) == 0:
        raise ValueError(f"acts must be [N, d_in] with N >= 1, got shape {tuple(acts.shape)}")
    fired = torch.zeros(sae.cfg.d_sae, dtype=torch.float64)
    for chunk in acts.split(batch_size):
        latents = sae.encode(chunk.to(sae.W_dec.device, sae.W_dec.dtype))
        fired += (latents > 0).sum(dim=0).cpu().double()
    return torch.log10(fired / len(acts) + 1e-10).to(torch.float32)


def resolve_device(device: str) -> str:
    """Check a device name; ``"auto"`` picks cuda if available, else mps, else cpu."""
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if torch.backends.mps.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device must be one of {DEVICE_TYPES}, got {device!r}") from error
    if parsed.type not in DEVICE_TYPES:
        raise ValueError(f"device must be one of {DEVICE_TYPES}, got {device!r}")
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r}: CUDA is not available here; use device='cpu'")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(f"device {device!r}: MPS is not available here; use device='cpu'")
    return str(parsed)


def _resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype}")
        return dtype
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
        return DTYPES[dtype]
    raise TypeError(f"dtype must be a string or a torch.dtype, got {type(dtype).__name__}")


def _dtype_name(dtype: torch.dtype) -> str:
    return next(name for name, value in DTYPES.items() if value == dtype)


# --- the paper's subject and its null -----------------------------------------------------------


def load_jb_gpt2(device: str, dtype: torch.dtype) -> tuple[HookedTransformer, SAE, torch.Tensor]:
    """GPT-2 small and the jb SAE at ``blocks.1.hook_resid_pre``, from the current hub cache.

    The model is loaded with TransformerLens' default processing (fold_ln,
    center_writing_weights, center_unembed).

    Returns:
        ``(model in eval mode, sae, log_sparsity [d_sae] float32 on CPU)``.

    Raises:
        RuntimeError: the release came without ``sparsity.safetensors`` (SAELens then returns
            ``None`` silently).
    """
    model = HookedTransformer.from_pretrained(hub.GPT2_REPO, device=device, dtype=dtype)
    with warnings.catch_warnings():
        # The release asks for center_writing_weights, which the default processing above applies.
        warnings.filterwarnings("ignore", _KWARGS_WARNING)
        sae, _, log_sparsity = SAE.from_pretrained_with_cfg_and_sparsity(
            hub.SAE_RELEASE, hub.SAE_ID, device=device, dtype=_dtype_name(dtype)
        )
    if log_sparsity is None:
        raise RuntimeError(
            f"SAELens returned no sparsity for {hub.SAE_RELEASE}/{hub.SAE_ID}: "
            f"{hub.SAE_REPO}/{hub.SAE_ID}/{SPARSITY_FILE} is missing from the hub cache "
            f"{hub.hub_cache_dir()}; download it with network access or set HF_HOME to a cache "
            "that has it"
        )
    return model.eval(), sae, log_sparsity.detach().to("cpu", torch.float32)


OPENWEBTEXT_FILES = tuple(
    hub.HubFile(OPENWEBTEXT_REPO, shard, repo_type="dataset") for shard in OPENWEBTEXT_SHARDS
)


def _check_gpt2_small_files() -> None:
    """Offline, every hub file gpt2-small needs must be cached (see `hub.require_cached`)."""
    hub.require_cached([*hub.GPT2_FILES, *hub.SAE_FILES, *OPENWEBTEXT_FILES], "gpt2-small")


def _load_gpt2_small(device: str, dtype: torch.dtype) -> Subject:
    """The paper's subject; prompts are the first tokens of random rows.

    The paper draws rows from the whole pre-tokenized OpenWebText set (about 9B tokens). Here
    the rows come from the parquet files `OPENWEBTEXT_SHARDS` only (one of the set's 73 shards,
    about 1/73 of its rows), so the prompts need one download of one shard and are the same on
    every machine for a given generator state; rows are still drawn uniformly, without
    replacement, within each call.
    """
    _check_gpt2_small_files()
    model, sae, log_sparsity = load_jb_gpt2(device, dtype)
    paths = [
        hf_hub_download(f.repo_id, f.filename, repo_type=f.repo_type) for f in OPENWEBTEXT_FILES
    ]
    prefixes = functools.cache(partial(read_parquet_prefixes, paths))
    source = f"{OPENWEBTEXT_REPO} {', '.join(OPENWEBTEXT_SHARDS)}"

    def sample_prompts(n: int, generator: torch.Generator, length: int = PROMPT_LEN):
        return sample_rows(prefixes(length), n, generator, source=source)

    return Subject(
        "gpt2-small", model, sae, log_sparsity, sample_prompts, GPT2_HOOK_IN, GPT2_HOOK_OUT
    )


def _load_null_gpt2(device: str, dtype: torch.dtype) -> Subject:
    """The negative control, from the null hub (built on first use, see `synthact.hub`).

    Prompts are random windows of `synthact.hub.null_prompt_stream` (CPython's pydoc topics,
    tokenized by the real GPT-2 tokenizer from the null hub).
    """
    hub_dir = hub.ensure_null_hub()
    with hub.use_hub_cache(hub_dir):
        hub.require_cached([*hub.GPT2_FILES, *hub.SAE_FILES], "null-gpt2")
        model, sae, log_sparsity = load_jb_gpt2(device, dtype)
    stream = hub.null_prompt_stream(model.tokenizer)

    def sample_prompts(n: int, generator: torch.Generator, length: int = PROMPT_LEN):
        return sample_windows(stream, n, generator, length=length, source="CPython's pydoc topics")

    return Subject(
        "null-gpt2", model, sae, log_sparsity, sample_prompts, GPT2_HOOK_IN, GPT2_HOOK_OUT
    )


# --- the planted controls -----------------------------------------------------------------------


def planted_subject(
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    *,
    gain: float = 30.0,
    seed: int = 0,
    **construction: float | int,
) -> Subject:
    """The planted subject (see `synthact.planted`), cast to ``dtype`` on ``device``.

    Args:
        gain: ramp output (30 = ``planted``, the positive control; 0 = ``planted-null``).
        seed: draws the features, offset and token embeddings.
        **construction: any other `synthact.planted.PlantedConfig` field.
    """
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch.dtype such as torch.float32, got {dtype!r}")
    planted = build_planted(gain=gain, seed=seed, **construction)
    planted.model.to(dtype, print_details=False)
    planted.model.to(device, print_details=False)
    planted.sae.to(device=device, dtype=dtype)
    return Subject(
        name="planted" if gain > 0 else "planted-null",
        model=planted.model,
        sae=planted.sae,
        log_sparsity=planted.log_sparsity,
        sample_prompts=partial(sample_planted_prompts, planted.config.d_vocab),
        hook_in=PLANTED_HOOK_IN,
        hook_out=PLANTED_HOOK_OUT,
    )


# --- any SAELens release ------------------------------------------------------------------------


@dataclass(frozen=True)
class Release:
    """An SAE of SAELens' pretrained-SAE directory.

    Attributes:
        release, sae_id: its names in the directory.
        repo_id, folder: where it lives on the hub.
        model: the directory's model name.
        conversion: SAELens' loader for the release's format (None: SAELens' own, which may
            include ``sparsity.safetensors``).
    """

    release: str
    sae_id: str
    repo_id: str
    folder: str
    model: str
    conversion: str | None

    @property
    def name(self) -> str:
        return f"{self.release}/{self.sae_id}"


def resolve_release(name: str) -> Release:
    """``RELEASE/SAE_ID`` (the id may contain ``/``) in SAELens' directory; no download.

    Raises:
        ValueError: unknown release, or an id the release lacks (nearby names are listed).
    """
    release, _, sae_id = name.partition("/")
    entry = _directory_entry(release)
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


def _directory() -> dict[str, PretrainedSAELookup]:
    from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory

    return get_pretrained_saes_directory()


def _directory_entry(release: str) -> PretrainedSAELookup:
    directory = _directory()
    if release not in directory:
        nearby = difflib.get_close_matches(release, list(directory), n=5, cutoff=0.5)
        raise ValueError(
            f"unknown SAELens release {release!r}; nearby releases: {nearby or 'none'}; "
            f"`synthact subjects` lists the {len(directory)} releases"
        )
    return directory[release]


@dataclass(frozen=True)
class _ReleaseCfg:
    """What a subject takes from an SAE's cfg (SAELens' ``metadata``, overrides applied)."""

    model_name: str
    model_kwargs: dict
    hook_in: str
    d_in: int
    dataset_path: str | None
    prepend_bos: bool


def _release_cfg(release: Release) -> _ReleaseCfg:
    """Read the SAE's cfg (one small file) and check it fits its model's config (another)."""
    from sae_lens.loading.pretrained_sae_loaders import load_sae_config_from_huggingface
    from transformer_lens.loading_from_pretrained import get_pretrained_model_config

    raw = load_sae_config_from_huggingface(release.release, release.sae_id)
    meta = {**raw, **raw.get("metadata", {})}
    model_class = meta.get("model_class_name") or "HookedTransformer"
    if model_class != "HookedTransformer":
        raise ValueError(
            f"{release.name}: the SAE was trained on a {model_class}; synthact perturbs "
            "TransformerLens HookedTransformer models only: pick another release"
        )
    cfg = _ReleaseCfg(
        model_name=meta.get("model_name") or release.model,
        model_kwargs=dict(meta.get("model_from_pretrained_kwargs") or {}),
        hook_in=meta.get("hook_name") or "",
        d_in=raw["d_in"],
        dataset_path=meta.get("dataset_path"),
        prepend_bos=bool(meta.get("prepend_bos", True)),
    )
    _check_fits(release, cfg, get_pretrained_model_config(cfg.model_name))
    return cfg


def _check_fits(release: Release, cfg: _ReleaseCfg, model_cfg: HookedTransformerConfig) -> None:
    """The SAE's hook is a residual-stream hook of the model, and the widths agree."""
    match = _RESID_HOOK.fullmatch(cfg.hook_in)
    if match is None:
        raise ValueError(
            f"{release.name}: the SAE reads {cfg.hook_in!r}; the perturbation method needs an SAE "
            "on the residual stream (blocks.L.hook_resid_pre or blocks.L.hook_resid_post): pick "
            "such an SAE id"
        )
    if int(match.group(1)) >= model_cfg.n_layers:
        raise ValueError(
            f"{release.name}: the SAE reads {cfg.hook_in!r} but {cfg.model_name} has "
            f"{model_cfg.n_layers} blocks (0..{model_cfg.n_layers - 1}): the release's cfg names "
            "a hook the model lacks; pick another SAE id"
        )
    if cfg.d_in != model_cfg.d_model:
        raise ValueError(
            f"{release.name}: the SAE reads vectors of width d_in={cfg.d_in} but "
            f"{cfg.model_name}'s residual stream has d_model={model_cfg.d_model}: the release's "
            "cfg does not fit its model; pick another SAE id"
        )


def _check_release_files(release: Release) -> None:
    """Offline, the model's config and (in SAELens' standard layout) the SAE's cfg must be cached:
    without them nothing of the subject loads (see `hub.require_cached`)."""
    from transformer_lens.loading_from_pretrained import get_official_model_name

    files = [hub.HubFile(get_official_model_name(release.model), "config.json")]
    if release.conversion is None:
        files.append(hub.HubFile(release.repo_id, f"{release.folder}/cfg.json"))
    hub.require_cached(files, release.name)


def _load_release(release: Release, device: str, dtype: torch.dtype) -> Subject:
    """``RELEASE/SAE_ID`` from the user's hub cache, prompts from the SAE's training dataset."""
    with _offline_hint(release):
        cfg = _release_cfg(release)
        if cfg.dataset_path is None:
            raise ValueError(
                f"{release.name}: the SAE's cfg names no dataset_path to draw prompts from"
            )
        model, sae, log_sparsity = _load_release_parts(release, cfg, device, dtype)
    bos_id = _bos_id(release, model, cfg)
    sampler = partial(_dataset_prompts, cfg.dataset_path, model.tokenizer, bos_id)
    return _release_subject(release, cfg, model, sae, log_sparsity, sampler)


def _load_null_release(release: Release, device: str, dtype: torch.dtype) -> Subject:
    """``null:RELEASE/SAE_ID``: the same calls reading the null hub; pydoc prompts."""
    with hub.use_hub_cache(hub.ensure_null_hub()):
        cfg = _release_cfg(release)
        model, sae, log_sparsity = _load_release_parts(release, cfg, device, dtype)
    stream = hub.null_prompt_stream(model.tokenizer)
    sampler = partial(_stream_prompts, stream, _bos_id(release, model, cfg))
    return _release_subject(release, cfg, model, sae, log_sparsity, sampler)


def _release_subject(
    release: Release,
    cfg: _ReleaseCfg,
    model: HookedTransformer,
    sae: SAE,
    log_sparsity: torch.Tensor | None,
    sampler: Callable[..., torch.Tensor],
) -> Subject:
    hook_out = f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"
    return Subject(
        release.name, model, sae, log_sparsity, sampler, cfg.hook_in, hook_out, log_sparsity is None
    )


def _load_release_parts(
    release: Release, cfg: _ReleaseCfg, device: str, dtype: torch.dtype
) -> tuple[HookedTransformer, SAE, torch.Tensor | None]:
    """The SAE and its log-sparsity (None: the release ships none), then the model."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", _KWARGS_WARNING)  # honoured below
        sae, _, log_sparsity = SAE.from_pretrained_with_cfg_and_sparsity(
            release.release, release.sae_id, device=device, dtype=_dtype_name(dtype)
        )
    if log_sparsity is None:
        _check_ships_no_sparsity(release)
    else:
        log_sparsity = log_sparsity.detach().to("cpu", torch.float32)
    model = HookedTransformer.from_pretrained_no_processing(
        cfg.model_name, device=device, dtype=dtype, **cfg.model_kwargs
    )
    return model.eval(), sae, log_sparsity


def _check_ships_no_sparsity(release: Release) -> None:
    """SAELens returns no sparsity both when the release has no file and on an offline cache miss;
    only the first may be estimated. The hub cache records a file's absence (``.no_exist``)."""
    if release.conversion is not None:
        return  # SAELens reads no sparsity for this format
    filename = f"{release.folder}/{SPARSITY_FILE}"
    if try_to_load_from_cache(release.repo_id, filename) is None:
        raise RuntimeError(
            f"{release.name}: SAELens returned no sparsity and the hub cache "
            f"{hub.hub_cache_dir()} does not record whether {release.repo_id}/{filename} exists "
            "(an offline cache miss looks the same); run once with network access"
        )


def _bos_id(release: Release, model: HookedTransformer, cfg: _ReleaseCfg) -> int | None:
    if not cfg.prepend_bos:
        return None
    if model.tokenizer is None or model.tokenizer.bos_token_id is None:
        raise ValueError(f"{release.name}: the SAE's cfg asks for BOS but the tokenizer has none")
    return model.tokenizer.bos_token_id


@contextmanager
def _offline_hint(release: Release) -> Iterator[None]:
    """Offline, turn a hub cache miss into an error saying what to do."""
    try:
        yield
    except OSError as error:
        if not hub.is_offline():
            raise
        fixes = [
            "run once with network access (HF_HUB_OFFLINE unset) to download it",
            "set HF_HOME to a cache that has it",
        ]
        if any(sae.name == release.name for sae in hub.NULL_SAES):
            fixes.append(f"use the offline stand-in --subject {NULL_PREFIX}{release.name}")
        raise RuntimeError(
            f"subject {release.name!r}: HF_HUB_OFFLINE=1 and a file it needs is not in the local "
            f"cache {hub.hub_cache_dir()}: {error}\nTo fix: {', or '.join(fixes)}."
        ) from error


def _dataset_prompts(
    path: str,
    tokenizer: PreTrainedTokenizerBase,
    bos_id: int | None,
    n: int,
    generator: torch.Generator,
    length: int = PROMPT_LEN,
) -> torch.Tensor:
    """``n`` distinct prompts from the first ``ROWS_PER_PROMPT * n`` rows of dataset ``path``.

    The SAE was trained on rows of the whole dataset; reading only its first rows keeps the
    download small (as ``gpt2-small`` reads one shard), at the cost of whatever order the
    dataset's rows have.
    """
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


def _stream_prompts(
    stream: torch.Tensor,
    bos_id: int | None,
    n: int,
    generator: torch.Generator,
    length: int = PROMPT_LEN,
) -> torch.Tensor:
    """``n`` distinct windows of the null prompt stream, after BOS when the SAE's cfg says so."""
    table = window_table(stream, length, bos_id=bos_id)
    return sample_rows(table, n, generator, source="the null prompt stream")


# --- registry and listing -----------------------------------------------------------------------


SUBJECTS: dict[str, SubjectSpec] = {
    spec.name: spec
    for spec in (
        SubjectSpec(
            "gpt2-small",
            "GPT-2 small, jb residual SAE at blocks.1.hook_resid_pre, OpenWebText prompts (paper)",
            _load_gpt2_small,
            constants=Constants.paper(),
            preflight=_check_gpt2_small_files,
        ),
        SubjectSpec(
            "null-gpt2",
            "random-weight GPT-2 and SAE from a locally built hub, pydoc prompts (null control)",
            _load_null_gpt2,
        ),
        SubjectSpec(
            "planted",
            "hand-built transformer with planted features and saturating readouts (positive)",
            partial(planted_subject, gain=30.0),
        ),
        SubjectSpec(
            "planted-null",
            "the planted transformer with its readout gain set to 0 (exact null)",
            partial(planted_subject, gain=0.0),
        ),
    )
}
"""Registered subjects by name."""


def describe_subjects(release: str | None = None) -> str:
    """What ``synthact subjects [RELEASE]`` prints: the names, or one release's SAE ids."""
    if release is not None:
        return "\n".join(f"{release}/{sae_id}" for sae_id in _directory_entry(release).saes_map)
    directory = _directory()
    lines = [f"{name:14s} {spec.description}" for name, spec in SUBJECTS.items()]
    lines += [
        "",
        "Any SAELens release: --subject RELEASE/SAE_ID, e.g.",
        f"  {EXAMPLE_RELEASE}",
        "  pythia-70m-deduped-res-sm/blocks.3.hook_resid_post",
        "  gemma-scope-2b-pt-res-canonical/layer_12/width_16k/canonical",
        "Offline random-weight stand-ins (the null hub): "
        + ", ".join(NULL_PREFIX + sae.name for sae in hub.NULL_SAES),
        "",
        f"Releases ({len(directory)}; `synthact subjects RELEASE` lists one's SAE ids):",
    ]
    lines += [
        f"  {name} ({entry.model}, {len(entry.saes_map)} SAEs)" for name, entry in directory.items()
    ]
    return "\n".join(lines)
