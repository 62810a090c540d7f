"""Subjects from a local directory: an SAE saved by SAELens, the model its cfg names, prompts.

``DIR`` holds an SAE as SAELens saves it (``SAE.save_model``, or the training runner's
``output_path``): ``cfg.json`` and ``sae_weights.safetensors``, loaded with
``SAE.load_from_disk``, and ``sparsity.safetensors`` (key ``sparsity``, log10 firing
frequencies) where the runner wrote one; without it the log-sparsity is estimated from pool
activations, as for releases. An optional `MANIFEST` in ``DIR`` says where the rest is (paths
relative to ``DIR``)::

    {"model": "model", "prompts": "corpus/heldout.txt.gz"}

- ``model``: a TransformerLens model directory as `save_transformer` writes it. Without it the
  cfg's ``model_name`` is loaded as SAELens trains on it
  (``HookedTransformer.from_pretrained_no_processing`` with ``model_from_pretrained_kwargs``,
  from the hub or the local Hugging Face cache).
- ``prompts``: UTF-8 text (``.txt`` or ``.txt.gz``, tokenized as one stream) or token ids
  (``.safetensors``, key ``tokens``, ``[n_tokens]``); prompts are distinct windows of the stream,
  after BOS when the cfg says ``prepend_bos``. Without it, the first rows of the cfg's
  ``dataset_path``, as for releases.

``hook_in`` is the SAE's hook (a residual-stream hook), ``hook_out`` the last block's
``hook_resid_post``. `check_local_subject` reads only the small JSON files and fails early, with
what to do, on a missing file, a hook the model lacks or a width mismatch.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import warnings
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING

from synthact.subjects.device import dtype_name
from synthact.subjects.releases import (
    bos_id,
    check_fits,
    sae_metadata,
    sample_dataset,
    sample_stream,
)
from synthact.subjects.types import Sampler, Subject, SubjectSpec

if TYPE_CHECKING:
    import torch
    from transformer_lens import HookedTransformer
    from transformers import PreTrainedTokenizerBase

PREFIX = "path:"
MANIFEST = "synthact.json"
MANIFEST_KEYS = ("model", "prompts")
SAE_FILES = ("cfg.json", "sae_weights.safetensors")
SPARSITY_FILE = "sparsity.safetensors"
MODEL_FILES = ("config.json", "model.safetensors")
TEXT_SUFFIXES = (".txt", ".txt.gz")
TOKEN_SUFFIX = ".safetensors"
TRANSFORMER_CONFIG_KEYS = (
    "model_name",
    "n_layers",
    "d_model",
    "d_head",
    "n_heads",
    "d_mlp",
    "d_vocab",
    "n_ctx",
    "act_fn",
    "normalization_type",
    "positional_embedding_type",
    "default_prepend_bos",
)
"""The ``HookedTransformerConfig`` fields `save_transformer` writes (a GPT-2-style model)."""
_KWARGS_WARNING = r"\s*This SAE has non-empty model_from_pretrained_kwargs"


@dataclass(frozen=True)
class LocalFiles:
    """What a local subject's files say, checked (`check_local_subject`).

    Attributes:
        directory: the SAE's directory.
        hook_in, d_in, prepend_bos: from the SAE's cfg.
        model_dir: the manifest's local model directory, or None: load ``model_name``.
        model_name, model_kwargs: the cfg's model and its ``model_from_pretrained_kwargs``.
        prompts: the manifest's prompt file, or None: read ``dataset_path``.
        dataset_path: the cfg's training dataset (None if it names none).
    """

    directory: Path
    hook_in: str
    d_in: int
    prepend_bos: bool
    model_dir: Path | None
    model_name: str | None
    model_kwargs: dict
    prompts: Path | None
    dataset_path: str | None


def local_spec(
    directory: str | Path, name: str | None = None, description: str | None = None
) -> SubjectSpec:
    """The spec of the subject in ``directory``, named ``path:DIR`` unless ``name`` is given.

    Reads nothing; its ``preflight`` runs `check_local_subject`.
    """
    directory = Path(directory)
    name = name or f"{PREFIX}{directory}"
    description = description or f"SAE saved by SAELens in {directory}, its model and prompts"
    return SubjectSpec(
        name,
        description,
        partial(load_local_subject, directory, name=name),
        preflight=partial(check_local_subject, directory),
        fingerprint=partial(local_fingerprint, directory),
    )


def local_fingerprint(directory: str | Path) -> str:
    """SHA-256 of every file a local subject loads: the files under ``directory`` and the model
    folder and prompts its `MANIFEST` names elsewhere (by relative path, size and bytes)."""
    files = check_local_subject(directory)
    roots = dict.fromkeys(p for p in (files.directory, files.model_dir, files.prompts) if p)
    h = hashlib.sha256()
    for root in roots:
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in paths:
            h.update(f"{path.relative_to(root.parent)}|{_file_digest(path)}\n".encode())
    return h.hexdigest()


def _file_digest(path: Path) -> str:
    stat = path.stat()
    return _file_digest_of(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@cache
def _file_digest_of(path: str, size: int, mtime_ns: int) -> str:
    """SHA-256 of a file's bytes, read once per (path, size, modification time) in a process."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_local_subject(
    directory: str | Path,
    device: str = "cpu",
    dtype: torch.dtype | None = None,
    *,
    name: str | None = None,
) -> Subject:
    """The SAE in ``directory``, its model and prompt source, on ``device`` in ``dtype`` (default
    float32).

    Raises:
        FileNotFoundError: a file the subject needs is missing.
        ValueError: the files do not fit together (see `check_local_subject`).
    """
    import torch
    from sae_lens import SAE
    from transformer_lens import HookedTransformer

    dtype = torch.float32 if dtype is None else dtype
    files = check_local_subject(directory)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", _KWARGS_WARNING)  # honoured when loading by name
        sae = SAE.load_from_disk(files.directory, device=device, dtype=dtype_name(dtype))
    log_sparsity = read_log_sparsity(files.directory)
    if files.model_dir is not None:
        model = load_transformer(files.model_dir, device, dtype)
    else:
        model = HookedTransformer.from_pretrained_no_processing(
            files.model_name, device=device, dtype=dtype, **files.model_kwargs
        )
    hook_out = f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"
    return Subject(
        name or f"{PREFIX}{files.directory}",
        model.eval(),
        sae,
        log_sparsity,
        _prompt_sampler(files, model),
        files.hook_in,
        hook_out,
        estimate_sparsity=log_sparsity is None,
    )


def check_local_subject(directory: str | Path) -> LocalFiles:
    """Read and check a local subject's small files, loading no weights.

    Raises:
        FileNotFoundError: no such directory; the SAE's, the model's or the prompt files missing.
        ValueError: a bad manifest; the SAE was not trained on a TransformerLens model; its hook is
            not a residual-stream hook of the model; its width is not the model's; no prompt
            source; the cfg names a model TransformerLens does not know.
        RuntimeError: offline, and the cfg's pretrained model is not in the local cache.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(
            f"local subject {str(directory)!r}: no such directory; {PREFIX}DIR names the directory "
            "an SAE was saved to by SAELens (SAE.save_model, or the training runner's output_path)"
        )
    _require_files(directory, SAE_FILES, "the SAE's directory, as SAELens' SAE.save_model writes")
    manifest = _read_manifest(directory)
    cfg = _read_sae_cfg(directory)
    model_dir = _manifest_path(directory, manifest, "model")
    prompts = _manifest_path(directory, manifest, "prompts")
    files = LocalFiles(
        directory=directory,
        hook_in=cfg.get("hook_name") or "",
        d_in=int(cfg["d_in"]),
        prepend_bos=bool(cfg.get("prepend_bos", True)),
        model_dir=model_dir,
        model_name=cfg.get("model_name"),
        model_kwargs=dict(cfg.get("model_from_pretrained_kwargs") or {}),
        prompts=prompts,
        dataset_path=cfg.get("dataset_path") or None,
    )
    _check_prompt_source(files)
    model = "the model" if model_dir is not None else files.model_name
    fix = f"point {MANIFEST}'s 'model' at the model the SAE was trained on"
    check_fits(str(directory), files.hook_in, files.d_in, model, *_model_shape(files), fix)
    return files


def read_log_sparsity(directory: Path) -> torch.Tensor | None:
    """``sparsity.safetensors`` (key ``sparsity``) as ``[d_sae]`` float32 on CPU, or None."""
    import torch
    from safetensors.torch import load_file

    path = directory / SPARSITY_FILE
    if not path.is_file():
        return None
    tensors = load_file(path)
    if "sparsity" not in tensors:
        raise ValueError(f"{path} has no tensor 'sparsity' (keys: {sorted(tensors)})")
    return tensors["sparsity"].to(torch.float32)


# --- TransformerLens model directories ---------------------------------------------------------


def save_transformer(
    model: HookedTransformer,
    directory: str | Path,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> None:
    """Write ``model`` as a local model directory: ``config.json`` (`TRANSFORMER_CONFIG_KEYS`),
    ``model.safetensors`` (its state dict, as it is) and the files of ``tokenizer`` (default:
    the model's, if any)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {key: getattr(model.cfg, key) for key in TRANSFORMER_CONFIG_KEYS}
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    state = {key: value.detach().contiguous() for key, value in model.state_dict().items()}
    save_file(state, directory / "model.safetensors")
    tokenizer = tokenizer or model.tokenizer
    if tokenizer is not None:
        tokenizer.save_pretrained(directory)


def load_transformer(
    directory: str | Path, device: str = "cpu", dtype: torch.dtype | None = None
) -> HookedTransformer:
    """The model `save_transformer` wrote to ``directory`` (with its tokenizer, if saved), in
    ``dtype`` (default float32).

    ``config.json`` holds ``HookedTransformerConfig`` arguments; the state dict must match the
    model they build exactly.
    """
    import torch
    from safetensors.torch import load_file
    from transformer_lens import HookedTransformer, HookedTransformerConfig
    from transformers import AutoTokenizer

    dtype = torch.float32 if dtype is None else dtype
    directory = Path(directory)
    _require_files(directory, MODEL_FILES, "a model directory as save_transformer writes")
    cfg = HookedTransformerConfig(**_transformer_config(directory), device=device, dtype=dtype)
    has_tokenizer = any((directory / name).is_file() for name in ("tokenizer.json", "vocab.json"))
    tokenizer = AutoTokenizer.from_pretrained(directory) if has_tokenizer else None
    model = HookedTransformer(cfg, tokenizer=tokenizer)
    model.load_state_dict(load_file(directory / "model.safetensors"), strict=True)
    return model.eval()


def _transformer_config(directory: Path) -> dict:
    from transformer_lens import HookedTransformerConfig

    config = json.loads((directory / "config.json").read_text())
    known = set(HookedTransformerConfig.__dataclass_fields__)
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(
            f"{directory / 'config.json'} has keys that are not HookedTransformerConfig fields: "
            f"{unknown}; a local model directory holds the config TransformerLens builds the "
            "model from (see save_transformer)"
        )
    return config


# --- checks ------------------------------------------------------------------------------------


def _require_files(directory: Path, names: tuple[str, ...], what: str) -> None:
    missing = [name for name in names if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{directory} lacks {', '.join(missing)}: it should be {what} ({', '.join(names)})"
        )


def _read_manifest(directory: Path) -> dict:
    path = directory / MANIFEST
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text())
    except ValueError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(manifest, dict) or set(manifest) - set(MANIFEST_KEYS):
        raise ValueError(
            f"{path} must be a JSON object with keys among {list(MANIFEST_KEYS)}, got "
            f"{sorted(manifest) if isinstance(manifest, dict) else type(manifest).__name__}"
        )
    return manifest


def _manifest_path(directory: Path, manifest: dict, key: str) -> Path | None:
    if key not in manifest:
        return None
    path = directory / manifest[key]
    if key == "model":
        _require_files(path, MODEL_FILES, f"the model directory {MANIFEST} names")
    elif not path.is_file():
        raise FileNotFoundError(
            f"{directory / MANIFEST} names prompts {path}, which does not exist"
        )
    return path


def _read_sae_cfg(directory: Path) -> dict:
    path = directory / "cfg.json"
    try:
        raw = json.loads(path.read_text())
    except ValueError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    cfg = sae_metadata(raw, str(directory), "train it on one to use it here")
    if "d_in" not in cfg:
        raise ValueError(f"{directory / 'cfg.json'} has no d_in: not an SAE cfg SAELens wrote")
    return cfg


def _check_prompt_source(files: LocalFiles) -> None:
    if files.prompts is None:
        if files.dataset_path is None:
            raise ValueError(
                f"{files.directory}: no prompt source: the SAE's cfg names no dataset_path; give "
                f'a text or token file in {MANIFEST}, e.g. {{"prompts": "heldout.txt"}}'
            )
        return
    name = files.prompts.name
    if not name.endswith((*TEXT_SUFFIXES, TOKEN_SUFFIX)):
        raise ValueError(
            f"prompts {files.prompts}: give text ({', '.join(TEXT_SUFFIXES)}) or token ids "
            f"({TOKEN_SUFFIX}, key 'tokens')"
        )


def _model_shape(files: LocalFiles) -> tuple[int, int]:
    """``(n_layers, d_model)`` of the subject's model, from its config alone."""
    if files.model_dir is not None:
        config = _transformer_config(files.model_dir)
        return int(config["n_layers"]), int(config["d_model"])
    if not files.model_name:
        raise ValueError(
            f"{files.directory}: the SAE's cfg names no model_name; point {MANIFEST}'s 'model' at "
            "a local model directory"
        )
    return _pretrained_shape(files)


def _pretrained_shape(files: LocalFiles) -> tuple[int, int]:
    from transformer_lens.loading_from_pretrained import (
        get_official_model_name,
        get_pretrained_model_config,
    )

    try:
        get_official_model_name(files.model_name)
    except ValueError as error:
        raise ValueError(
            f"{files.directory}: the SAE's cfg names model {files.model_name!r}, which is not a "
            f"TransformerLens pretrained model; point {MANIFEST}'s 'model' at a local model "
            "directory"
        ) from error
    try:
        model_cfg = get_pretrained_model_config(files.model_name, **files.model_kwargs)
    except OSError as error:
        raise RuntimeError(
            f"{files.directory}: cannot read the config of {files.model_name!r} (offline, and not "
            f"in the local Hugging Face cache?): {error}"
        ) from error
    return model_cfg.n_layers, model_cfg.d_model


# --- prompts -----------------------------------------------------------------------------------


def _prompt_sampler(files: LocalFiles, model: HookedTransformer) -> Sampler:
    """Prompts from the manifest's file or the cfg's dataset, after BOS when the cfg says
    ``prepend_bos``."""
    bos = bos_id(str(files.directory), model, files.prepend_bos)
    if files.prompts is None:
        return partial(sample_dataset, files.dataset_path, model.tokenizer, bos)
    stream = read_prompt_stream(files.prompts, model)
    return partial(sample_stream, stream, bos, str(files.prompts))


def read_prompt_stream(path: Path, model: HookedTransformer) -> torch.Tensor:
    """A prompt file as ``[n_tokens]`` int64 ids below the model's vocabulary size."""
    import torch
    from safetensors.torch import load_file

    from synthact.subjects.prompts import token_stream

    if path.name.endswith(TOKEN_SUFFIX):
        tensors = load_file(path)
        if "tokens" not in tensors or tensors["tokens"].ndim != 1:
            raise ValueError(f"{path} must hold a 1-D tensor 'tokens' of token ids")
        stream = tensors["tokens"].to(torch.int64)
    else:
        if model.tokenizer is None:
            raise ValueError(f"prompts {path} are text, but the model has no tokenizer")
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as file:
            stream = token_stream(model.tokenizer, file.read())
    if len(stream) and (stream.min() < 0 or stream.max() >= model.cfg.d_vocab):
        raise ValueError(
            f"prompts {path} hold token ids outside the model's vocabulary "
            f"0..{model.cfg.d_vocab - 1}"
        )
    return stream
