"""Run options, declared once: a typed field with its default, choices and help each.

`RunConfig` holds what a run computes and `Outputs` where its files go; the pytest options
(fixtures/options.py) and the ``synthact replicate`` command line are generated from their fields
(`add_options`), so both take the same flags with the same defaults, choices and help.
"""

from __future__ import annotations

import dataclasses
import errno
import tempfile
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthact.core.choices import (
    DEVICES,
    DTYPE_NAMES,
    GRIDS,
    LATENT_MOVES,
    NOMINAL_STEPS,
    PROMPT_LEN,
    REAL_CURVES,
)


@dataclass(frozen=True)
class Option:
    """How a config field appears on the command lines."""

    help: str
    choices: tuple[str, ...] | None = None

    @staticmethod
    def of(spec: dataclasses.Field) -> Option | None:
        return spec.metadata.get("option")


def option(default: Any, help: str, *, choices: tuple[str, ...] | None = None) -> Any:
    """A dataclass field that is also a command-line option ``--field-name``."""
    return field(default=default, metadata={"option": Option(help, choices)})


@dataclass(frozen=True)
class RunConfig:
    """What one replication run computes (see docs/method.md for each choice)."""

    subject: str = option(
        "gpt2-small",
        "subject(s), comma-separated: registered names, RELEASE/SAE_ID of any SAELens release, "
        "null:RELEASE/SAE_ID, or path:DIR of an SAE saved by SAELens (`synthact subjects` lists "
        "them)",
    )
    n: int = option(1000, "perturbations per target/base type (the paper's n)")
    seed: int = option(0, "master seed of every random draw; same seed, same numbers")
    n_needed: bool = option(
        False,
        "run each claim's experiments at the larger of --n and the n the claim needs for 80 %% "
        "power at the paper's effect (synthact/data/power.json at pairing 0, at most 4000): "
        "the rows of --n, then more (docs/power.md)",
    )
    n_gaussian: int = option(32_000, "real activations the Gaussian ('random') is fitted on")
    n_latent_stats: int = 2_000
    """Real activations for Appendix E (paper: 2,000)."""
    grid: str = option(
        "code",
        "step grid: code (the authors' 100 points over 100 steps) or text (101 points)",
        choices=tuple(GRIDS),
    )
    latent_moves: str = option(
        "in-place",
        "synthetic-random/-baseline: in-place (the authors' code) or distinct (the paper's text)",
        choices=LATENT_MOVES,
    )
    real_curves: str = option(
        "auto",
        "relative-mode real-target L2/KL curves: rounded (to 4 decimals, as the authors' tables "
        "read them), full (precision, like every other type) or auto (rounded on gpt2-small only)",
        choices=REAL_CURVES,
    )
    prompt_len: int = option(PROMPT_LEN, "tokens per prompt; the last one is perturbed")
    device: str = option(
        "auto", "where the model runs (auto: cuda, else mps, else cpu)", choices=DEVICES
    )
    dtype: str = option(
        "float32",
        "model and SAE precision; other than float32, claims/test_precision.py measures how far "
        "each type's steps move",
        choices=DTYPE_NAMES,
    )
    tf32: bool = option(
        False,
        "let CUDA float32 matrix products use TF32 (claims/test_precision.py measures the effect)",
    )
    construction: str | None = option(
        None,
        "extra target constructions, comma-separated module:function (a builder or a "
        "synthact.method.constructions.Construction); they join every experiment they name",
    )

    def __post_init__(self) -> None:
        """Check each value on its own (no import, no registry, no device probe: `resolved`)."""
        for name in ("n", "n_gaussian"):
            if getattr(self, name) < 2:
                raise ValueError(
                    f"{name} ({flag(name)}) must be at least 2, got {getattr(self, name)}"
                )
        if self.prompt_len < 1:
            raise ValueError(
                f"prompt_len (--prompt-len) must be at least 1 token, got {self.prompt_len}"
            )
        for name, allowed in (
            ("grid", GRIDS),
            ("latent_moves", LATENT_MOVES),
            ("real_curves", REAL_CURVES),
            ("dtype", DTYPE_NAMES),
        ):
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(
                    f"{name} ({flag(name)}) must be one of {tuple(allowed)}, got {value!r}"
                )
        _check_tf32(self.tf32, self.device)

    def resolved(self) -> RunConfig:
        """This config checked against what is here, with ``device`` resolved (``auto``: cuda,
        else mps, else cpu): its subject named (`subject_spec`, no download), its constructions
        imported and registered. ValueError for a bad value, RuntimeError for a device missing
        here. What a run computes with; the same config again when resolved twice."""
        from synthact.subjects import resolve_device, subject_spec

        subject_spec(self.subject)
        device = resolve_device(self.device)
        _check_tf32(self.tf32, device)
        if self.construction:
            from synthact.method import constructions

            constructions.load(self.construction)
        return dataclasses.replace(self, device=device)

    @property
    def exact(self) -> bool:
        """Float32 without TF32, the precision of the paper's runs."""
        return self.dtype == "float32" and not self.tf32

    def reference(self) -> RunConfig:
        """The same run in float32 without TF32, what other precisions are compared with."""
        return dataclasses.replace(self, dtype="float32", tf32=False)

    @property
    def n_pool(self) -> int:
        """Real activations collected once: for the Gaussian, Appendix E and the pairs with a
        third activation each (C14)."""
        return max(self.n_gaussian, self.n_latent_stats, self.n + 2)

    @property
    def n_steps(self) -> int:
        """Points per curve (`GRIDS`)."""
        return GRIDS[self.grid]

    def spacing(self, step: float) -> float:
        """Distance between consecutive points of an absolute path of nominal ``step``."""
        return step * NOMINAL_STEPS / (self.n_steps - 1)


@dataclass(frozen=True)
class Outputs:
    """Where a run's files go."""

    matrix_dir: str | None = option(
        None,
        "where the reports go: matrix.md and matrix.png, and for `synthact replicate` each "
        "subject's tables and figures and the Allure results (default reports/)",
    )
    synthact_cache: str | None = option(
        None, "experiment result cache (default $SYNTHACT_CACHE, else ~/.cache/synthact)"
    )


@dataclass(frozen=True)
class Placement:
    """Where a run's experiments are computed (not part of any result's key)."""

    ray: str | None = option(
        None,
        "compute every experiment of the run on a Ray cluster first, the results written into "
        "this machine's cache: auto, ray://HOST:10001, HOST:PORT, or local (a cluster started "
        "here); needs pip install -e '.[ray]'",
    )


OPTION_CLASSES = (RunConfig, Outputs, Placement)


def option_fields() -> list[tuple[dataclasses.Field, Option, type]]:
    """(field, its `Option`, its type) of every command-line option, in declaration order."""
    found = []
    for cls in OPTION_CLASSES:
        hints = typing.get_type_hints(cls)
        for spec in dataclasses.fields(cls):
            declared = Option.of(spec)
            if declared is not None:
                found.append((spec, declared, _plain_type(hints[spec.name])))
    return found


def flag(name: str) -> str:
    """The command-line flag of a config field: ``--`` and the name with ``-`` for ``_``."""
    return "--" + name.replace("_", "-")


def add_options(add: typing.Callable[..., object]) -> None:
    """Declare every option through ``add`` (``argparse``'s ``add_argument`` or pytest's
    ``addoption``), with its dest, type, default, choices and help."""
    for spec, declared, kind in option_fields():
        shown = "off" if spec.default is False else spec.default
        help = declared.help if spec.default is None else f"{declared.help} (default {shown})"
        if kind is bool:
            add(flag(spec.name), dest=spec.name, action="store_true", help=help)
            continue
        add(
            flag(spec.name),
            dest=spec.name,
            type=kind,
            default=spec.default,
            choices=declared.choices,
            help=help,
        )


def run_configs(values: Mapping[str, Any]) -> list[RunConfig]:
    """One `RunConfig` per subject named in ``values["subject"]`` (option values by dest), each
    value checked on its own; `RunConfig.resolved` checks them against what is here."""
    fields = [spec.name for spec in dataclasses.fields(RunConfig) if Option.of(spec)]
    common = {name: values[name] for name in fields if name != "subject"}
    return [RunConfig(subject=name, **common) for name in subject_list(values["subject"])]


def subject_list(subjects: str) -> list[str]:
    """The names of a comma-separated ``--subject`` value (ValueError when it names none)."""
    names = [name.strip() for name in subjects.split(",") if name.strip()]
    if not names:
        raise ValueError(
            f"--subject {subjects!r} names no subject; pass one or more, comma-separated, "
            "e.g. --subject planted,planted-null (`synthact subjects` lists them)"
        )
    return names


def check_output_dir(flag: str, path: Path) -> None:
    """Create the folder ``path`` (given as ``flag``) if needed and check that a file can be
    written in it; ValueError naming the flag, the path and why otherwise."""
    blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise ValueError(f"{flag} {path}: {blocker} is a file, not a folder; pass a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError as err:
        why = err.strerror or type(err).__name__
        if err.errno == errno.ENOENT:  # its nearest folder exists but takes no new ones (/proc)
            why = f"{next(p for p in path.parents if p.exists())} takes no new folders"
        raise ValueError(
            f"{flag} {path}: cannot write there ({why}); pass a folder you can write to"
        ) from None


def option_words(values: Mapping[str, Any]) -> list[str]:
    """The command-line words that give every option its value in ``values`` (by dest)."""
    words = []
    for spec, _, kind in option_fields():
        value = values[spec.name]
        if kind is bool:
            words += [flag(spec.name)] if value else []
        elif value is not None:
            words += [flag(spec.name), str(value)]
    return words


def _plain_type(hint: Any) -> type:
    """``int``, ``str`` or ``bool`` of a field's type (``str | None`` is ``str``)."""
    args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    return args[0] if args else hint


def _check_tf32(tf32: bool, device: str) -> None:
    """TF32 only on CUDA (``auto`` is checked once resolved)."""
    if tf32 and device != "auto" and not device.startswith("cuda"):
        raise ValueError(f"--tf32 changes CUDA matrix products only; device is {device!r}")
