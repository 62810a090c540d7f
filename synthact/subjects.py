"""Subjects: a model, the SAE at its input hook, the SAE's log-sparsity and a prompt source.

A subject is everything an experiment needs to know about "what is being studied". Subjects are
rows of a registry (`SUBJECTS`), loaded by name with `load_subject`, which checks the result
with `validate_subject`. Adding a subject = adding a `SubjectSpec` row.

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
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from huggingface_hub import hf_hub_download
from sae_lens import SAE
from transformer_lens import HookedTransformer

from synthact import hub
from synthact.prompts import PROMPT_LEN, read_parquet_prefixes, sample_rows, sample_windows

__all__ = [
    "PROMPT_LEN",
    "SUBJECTS",
    "Constants",
    "Subject",
    "SubjectSpec",
    "load_jb_gpt2",
    "load_subject",
    "validate_subject",
]

GPT2_HOOK_IN = hub.SAE_ID
GPT2_HOOK_OUT = "blocks.11.hook_resid_post"
OPENWEBTEXT_REPO = "apollo-research/Skylion007-openwebtext-tokenizer-gpt2"
OPENWEBTEXT_SHARDS = ("data/train-00000-of-00073.parquet",)
"""The dataset's parquet files ``gpt2-small`` draws prompt rows from (first of 73 shards)."""

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
        name: registry name, e.g. ``"gpt2-small"``.
        model: the transformer, in eval mode, on the chosen device and dtype.
        sae: the SAE reading ``hook_in`` (``sae.cfg.d_in == model.cfg.d_model``).
        log_sparsity: ``[d_sae]`` float tensor, ``log10(firing frequency + 1e-10)`` (on CPU).
        sample_prompts: ``(n, generator) -> tokens [n, PROMPT_LEN]`` (int64, CPU), deterministic
            given the generator's state.
        hook_in: where the perturbation is applied (last position).
        hook_out: where the L2 distance is measured (last position).
    """

    name: str
    model: HookedTransformer
    sae: SAE
    log_sparsity: torch.Tensor
    sample_prompts: Callable[[int, torch.Generator], torch.Tensor]
    hook_in: str
    hook_out: str


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
    """A registry row: ``loader(device, dtype)`` builds the subject called ``name``.

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


def load_subject(name: str, device: str = "cpu", dtype: str | torch.dtype = "float32") -> Subject:
    """Load the registered subject ``name`` and check it with `validate_subject`.

    Args:
        name: a key of `SUBJECTS`.
        device: ``cpu``, ``cuda`` (or ``cuda:N``), ``mps`` or ``auto`` (see `resolve_device`).
        dtype: ``float32`` (default), ``float16``, ``bfloat16`` or ``float64``, by name or as a
            ``torch.dtype``.

    Raises:
        ValueError: unknown subject, device or dtype, or an inconsistent subject.
        TypeError: ``dtype`` is neither a string nor a ``torch.dtype``.
        RuntimeError: the device is not available, or (offline) hub files are missing.
    """
    if name not in SUBJECTS:
        raise ValueError(f"unknown subject {name!r}; known subjects: {', '.join(SUBJECTS)}")
    device = resolve_device(device)
    torch_dtype = _resolve_dtype(dtype)
    subject = dataclasses.replace(SUBJECTS[name].loader(device, torch_dtype), name=name)
    validate_subject(subject)
    return subject


def validate_subject(subject: Subject) -> None:
    """Check that the subject's parts fit together.

    Raises:
        ValueError: a hook is not in ``model.hook_dict``; the SAE width or hook does not match
            the model; ``log_sparsity`` is missing, not ``[d_sae]``, off the CPU or not finite;
            the SAE has NaN weights.
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


# --- loaders ------------------------------------------------------------------------------------


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
    dtype_name = next(name for name, value in DTYPES.items() if value == dtype)
    with warnings.catch_warnings():
        # The release asks for center_writing_weights, which the default processing above applies.
        warnings.filterwarnings("ignore", r"\s*This SAE has non-empty model_from_pretrained_kwargs")
        sae, _, log_sparsity = SAE.from_pretrained_with_cfg_and_sparsity(
            hub.SAE_RELEASE, hub.SAE_ID, device=device, dtype=dtype_name
        )
    if log_sparsity is None:
        raise RuntimeError(
            f"SAELens returned no sparsity for {hub.SAE_RELEASE}/{hub.SAE_ID}: "
            f"{hub.SAE_REPO}/{hub.SAE_ID}/sparsity.safetensors is missing from the hub cache "
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
    """The paper's subject; prompts are the first `PROMPT_LEN` tokens of random rows.

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
    prefixes = read_parquet_prefixes(paths)
    return Subject(
        name="gpt2-small",
        model=model,
        sae=sae,
        log_sparsity=log_sparsity,
        sample_prompts=partial(
            sample_rows, prefixes, source=f"{OPENWEBTEXT_REPO} {', '.join(OPENWEBTEXT_SHARDS)}"
        ),
        hook_in=GPT2_HOOK_IN,
        hook_out=GPT2_HOOK_OUT,
    )


def _load_null_gpt2(device: str, dtype: torch.dtype) -> Subject:
    """The negative control, from the null hub (built on first use, see `synthact.hub`).

    Prompts are random `PROMPT_LEN`-token windows of `synthact.hub.null_prompt_stream`
    (CPython's pydoc topics, tokenized by the real GPT-2 tokenizer from the null hub).
    """
    hub_dir = hub.ensure_null_hub()
    with hub.use_hub_cache(hub_dir):
        hub.require_cached([*hub.GPT2_FILES, *hub.SAE_FILES], "null-gpt2")
        model, sae, log_sparsity = load_jb_gpt2(device, dtype)
    stream = hub.null_prompt_stream(model.tokenizer)
    return Subject(
        name="null-gpt2",
        model=model,
        sae=sae,
        log_sparsity=log_sparsity,
        sample_prompts=partial(sample_windows, stream, source="CPython's pydoc topics"),
        hook_in=GPT2_HOOK_IN,
        hook_out=GPT2_HOOK_OUT,
    )


def _load_planted(device: str, dtype: torch.dtype, *, gain: float) -> Subject:
    from synthact import planted

    return planted.load_planted(device, dtype, gain=gain)


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
            partial(_load_planted, gain=30.0),
        ),
        SubjectSpec(
            "planted-null",
            "the planted transformer with its readout gain set to 0 (exact null)",
            partial(_load_planted, gain=0.0),
        ),
    )
}
"""Registered subjects by name."""
