"""Target constructions: the one registry every list of synthetic types is derived from.

A `Construction` is a name, a builder, a label, a colour and the experiments it joins
(`MEMBERSHIPS`); the experiments, the claims, the figures, the tables and the leaderboard read
`CONSTRUCTIONS`. The builder is called with keyword arguments and uses what it needs:

- ``base``: ``[n, d_model]`` float32 CPU real activations to build targets from,
- ``sae``: the subject's SAE,
- ``pool``: `PoolStatistics` of the run's pool of real activations (log-sparsity, co-occurrence
  counts, mean latent values, decoder cosines),
- ``generator``: a seeded ``torch.Generator`` of its own,
- ``latent_moves``: the run's ``--latent-moves``;

and returns targets of ``base``'s shape. Constructions outside this package register through the
entry point group ``synthact.method.constructions`` or ``--construction module:function`` (`load`).
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from types import ModuleType
from typing import TYPE_CHECKING

import torch

from synthact.core.choices import LATENT_MOVES
from synthact.core.code_digest import modules_digest
from synthact.core.registry import Registry
from synthact.core.validate import check_generator, check_log_sparsity
from synthact.method import synthetic
from synthact.method.cooccurrence import Cooccurrence
from synthact.method.targets import decode, encode

if TYPE_CHECKING:
    from sae_lens import SAE

MEMBERSHIPS = ("sensitivity", "kl", "plateau", "other-source")
"""What a construction can join: the sensitivity experiment (MS/AUC/NL), its KL curves (Appendix
C), the plateau experiments (AP) and the other-source experiment (C14)."""

ENTRY_POINT_GROUP = "synthact.method.constructions"

Builder = Callable[..., torch.Tensor]


class ConstructionError(ValueError):
    """A construction from outside synthact failed to build its targets (bad input)."""


@dataclass(frozen=True)
class Construction:
    """A target type built from real activations (see the module docstring for ``build``).

    ``joins``: the `MEMBERSHIPS` it takes part in; ``paper``: one of the paper's types, which its
    claims (C2-C9, C14) name; ``origin``: the module that defines a construction from outside
    synthact (its code digest joins the cache key of its results), None for a built-in.
    """

    name: str
    build: Builder
    label: str = ""
    color: str | None = None
    joins: tuple[str, ...] = MEMBERSHIPS
    paper: bool = False
    origin: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"a construction needs a non-empty name, got {self.name!r}")
        if not callable(self.build):
            raise TypeError(f"construction {self.name!r}: build must be callable")
        unknown = set(self.joins) - set(MEMBERSHIPS)
        if unknown:
            raise ValueError(
                f"construction {self.name!r} joins {sorted(unknown)}; known: {MEMBERSHIPS}"
            )

    @property
    def title(self) -> str:
        return self.label or self.name

    @property
    def version(self) -> str:
        """The digest of an outside construction's module ("" for a built-in)."""
        return modules_digest([self.origin])[:16] if self.origin else ""


@dataclass(frozen=True, eq=False)
class PoolStatistics:
    """Statistics of the run's pool of real activations, for builders (computed when read).

    ``log_sparsity [d_sae]`` is the SAE's; ``cooccurrence`` (`Cooccurrence`: firing and
    co-firing counts) comes from ``load_cooccurrence``, called once, on first use.
    """

    sae: SAE
    log_sparsity: torch.Tensor
    load_cooccurrence: Callable[[], Cooccurrence] | None = None

    @cached_property
    def cooccurrence(self) -> Cooccurrence:
        if self.load_cooccurrence is None:
            raise ValueError(
                "no co-occurrence counts here: build targets through "
                "`synthact.method.experiments.Lab`, "
                "or pass PoolStatistics(..., load_cooccurrence=...) (count_cooccurrence)"
            )
        return self.load_cooccurrence()

    @property
    def mean_values(self) -> torch.Tensor:
        """``[d_sae]`` each latent's mean value where it fires in the pool."""
        return self.cooccurrence.mean_values

    def decoder_cos(self, latents: torch.Tensor) -> torch.Tensor:
        """``[len(latents), d_sae]`` cosines between the decoder rows of ``latents`` and all."""
        w_dec = self.sae.W_dec.detach().float().cpu()
        unit = w_dec / w_dec.norm(dim=1, keepdim=True)
        return unit[latents.cpu()] @ unit.T


def latent_builder(move: Callable[..., torch.Tensor]) -> Builder:
    """A builder ``decode(move(encode(base), pool, W_dec, generator, distinct))``, for
    constructions that move SAE latents (``move`` returns ``[n, d_sae]`` latents)."""

    def build(
        *, base: torch.Tensor, sae: SAE, pool: PoolStatistics, generator, latent_moves, **_
    ) -> torch.Tensor:
        latents = encode(sae, base, host=False)
        log_sparsity = pool.log_sparsity.to(sae.device)
        distinct = latent_moves == "distinct"
        moved = move(latents, log_sparsity, pool, sae.W_dec.detach(), generator, distinct)
        return decode(sae, moved)

    return build


CONSTRUCTIONS: Registry[Construction] = Registry("construction")
CONSTRUCTIONS.register(
    Construction(
        "synthetic-random",
        latent_builder(
            lambda z, ls, pool, w_dec, g, distinct: synthetic.synthetic_random(
                z, ls, g, distinct=distinct
            )
        ),
        color="#7f7f7f",
        joins=("sensitivity", "other-source"),
        paper=True,
    )
)
CONSTRUCTIONS.register(
    Construction(
        "synthetic-baseline",
        latent_builder(
            lambda z, ls, pool, w_dec, g, distinct: synthetic.synthetic_baseline(
                z, ls, g, skip_chosen=distinct
            )
        ),
        color="#9467bd",
        paper=True,
    )
)
CONSTRUCTIONS.register(
    Construction(
        "synthetic-structured",
        latent_builder(
            lambda z, ls, pool, w_dec, g, distinct: synthetic.synthetic_structured(z, ls, w_dec, g)
        ),
        color="#2ca02c",
        paper=True,
    )
)
CONSTRUCTIONS.register(
    Construction(
        "structured-no-cos",
        latent_builder(
            lambda z, ls, pool, w_dec, g, distinct: synthetic.synthetic_structured(
                z, ls, w_dec, g, match_top_cos=False
            )
        ),
        label="structured w/o cos sim",
        color="#bcbd22",
        joins=("sensitivity", "other-source"),
        paper=True,
    )
)
CONSTRUCTIONS.register(
    Construction(
        "synthetic-cooccurrence",
        latent_builder(
            lambda z, ls, pool, w_dec, g, distinct: synthetic.synthetic_cooccurrence(
                z, ls, pool.cooccurrence, g
            )
        ),
        color="#e377c2",
    )
)
CONSTRUCTIONS.register(
    Construction(
        "synthetic-frequency",
        latent_builder(
            lambda z, ls, pool, w_dec, g, distinct: synthetic.synthetic_frequency(z, ls, g)
        ),
        label="frequency-matched (co-occurrence's control)",
        color="#d62728",
    )
)


def names(membership: str | None = None, *, paper: bool | None = None) -> tuple[str, ...]:
    """The registered constructions (entry points loaded), in registration order: those joining
    ``membership`` (one of `MEMBERSHIPS`; None: all) and, if ``paper`` is given, of the paper or
    not."""
    load_entry_points()
    if membership is not None and membership not in MEMBERSHIPS:
        raise ValueError(f"unknown membership {membership!r}; known: {MEMBERSHIPS}")
    return tuple(
        c.name
        for c in CONSTRUCTIONS.values()
        if (membership is None or membership in c.joins) and paper in (None, c.paper)
    )


def build(
    kind: str,
    *,
    base: torch.Tensor,
    sae: SAE,
    pool: PoolStatistics,
    generator: torch.Generator,
    latent_moves: str = "in-place",
) -> torch.Tensor:
    """Targets ``[n, d_model]`` (float32 CPU) of construction ``kind`` built from ``base``."""
    construction = CONSTRUCTIONS.lookup(kind)
    if latent_moves not in LATENT_MOVES:
        raise ValueError(
            f"latent_moves must be one of {', '.join(LATENT_MOVES)}; got {latent_moves!r}"
        )
    check_generator(generator)
    check_log_sparsity(pool.log_sparsity, sae.cfg.d_sae)
    try:
        targets = construction.build(
            base=base, sae=sae, pool=pool, generator=generator, latent_moves=latent_moves
        )
    except Exception as error:
        if construction.origin is None:
            raise
        raise ConstructionError(
            f"--construction {kind!r} ({construction.origin}): its builder raised "
            f"{type(error).__name__}: {error}"
        ) from error
    if not isinstance(targets, torch.Tensor) or targets.shape != base.shape:
        got = list(targets.shape) if isinstance(targets, torch.Tensor) else type(targets).__name__
        raise ValueError(
            f"construction {kind!r} returned {got}; a builder returns targets of the base's "
            f"shape {list(base.shape)}"
        )
    return targets.detach().float().cpu()


def synthetic_targets(
    sae: SAE,
    acts: torch.Tensor,
    kind: str,
    log_sparsity: torch.Tensor,
    generator: torch.Generator,
    *,
    latent_moves: str = "in-place",
) -> torch.Tensor:
    """`build` with only the SAE's log-sparsity for pool statistics: ``[B, d_in]`` targets of
    construction ``kind`` from ``acts [B, d_in]``."""
    check_log_sparsity(log_sparsity, sae.cfg.d_sae)
    pool = PoolStatistics(sae, log_sparsity)
    return build(
        kind, base=acts, sae=sae, pool=pool, generator=generator, latent_moves=latent_moves
    )


# --- constructions from outside synthact ------------------------------------------------------


def as_construction(name: str, obj: object, origin: str) -> Construction:
    """``obj`` as a `Construction`: one as it is, a builder function under ``name``."""
    if isinstance(obj, Construction):
        return obj if obj.origin else replace(obj, origin=origin)
    if callable(obj):
        return Construction(name, obj, origin=origin)
    raise TypeError(
        f"{origin}: {name!r} is a {type(obj).__name__}; a construction is a builder function "
        "or a synthact.method.constructions.Construction"
    )


def register_outside(construction: Construction) -> None:
    """Register ``construction`` (again is a no-op; another one of the same name is an error)."""
    known = CONSTRUCTIONS.get(construction.name)
    if known is not None and known.build is construction.build:
        return
    CONSTRUCTIONS.register(construction)


@functools.cache
def load_entry_points() -> None:
    """Register every construction of the ``synthact.method.constructions`` entry point group
    (once)."""
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        obj = entry.load()
        register_outside(as_construction(entry.name, obj, entry.module))


def _import_from_here(module_name: str) -> ModuleType:
    """The module ``module_name``, looked for in the current folder first, as ``python`` does."""
    here = os.getcwd()
    sys.path.insert(0, here)
    try:
        return importlib.import_module(module_name)
    finally:
        sys.path.remove(here)


def load(specs: str) -> list[Construction]:
    """Register the constructions named by ``--construction`` (``module:function``, comma
    separated; the module found in the current folder or on the path); returns them. ValueError
    saying what is wrong with a spec."""
    found = []
    for spec in (s.strip() for s in specs.split(",") if s.strip()):
        module_name, colon, attribute = spec.partition(":")
        if not colon or not module_name or not attribute:
            raise ValueError(f"--construction {spec!r}: expected module:function")
        try:
            module = _import_from_here(module_name)
        except ImportError as error:
            message = f"--construction {spec!r}: cannot import {module_name}: {error}"
            raise ValueError(message) from None
        if not hasattr(module, attribute):
            raise ValueError(f"--construction {spec!r}: {module_name} has no {attribute!r}")
        obj = getattr(module, attribute)
        construction = as_construction(attribute.replace("_", "-"), obj, module_name)
        register_outside(construction)
        found.append(construction)
    return found
