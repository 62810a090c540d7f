"""Checks that a loaded subject's parts fit together."""

from __future__ import annotations

import difflib

from synthact.subjects.types import Subject


def validate_subject(subject: Subject) -> None:
    """Raise ValueError (TypeError for a wrong type) unless both hooks are hooks of the model,
    the SAE reads the model's width at ``hook_in``, ``log_sparsity`` is a finite CPU ``[d_sae]``
    (or None when estimated) and the SAE has no NaN weight."""
    import torch

    model, sae, name = subject.model, subject.sae, subject.name
    for role in ("hook_in", "hook_out"):
        hook = getattr(subject, role)
        if hook not in model.hook_dict:
            nearby = difflib.get_close_matches(hook, list(model.hook_dict), n=5, cutoff=0.6)
            raise ValueError(
                f"subject {name!r}: {role} {hook!r} is not a hook of the model; "
                f"nearby valid names: {nearby or sorted(model.hook_dict)[:5]}"
            )
    if sae.cfg.d_in != model.cfg.d_model:
        raise ValueError(
            f"subject {name!r}: the SAE reads vectors of width d_in={sae.cfg.d_in} but the "
            f"model's residual stream has d_model={model.cfg.d_model}"
        )
    sae_hook = sae.cfg.metadata.hook_name
    if sae_hook is not None and sae_hook != subject.hook_in:
        raise ValueError(
            f"subject {name!r}: the SAE was trained on {sae_hook!r} but hook_in is "
            f"{subject.hook_in!r}"
        )
    _check_subject_sparsity(subject)
    for param_name, param in sae.named_parameters():
        if torch.isnan(param).any():
            raise ValueError(f"subject {name!r}: SAE parameter {param_name} contains NaN")


def _check_subject_sparsity(subject: Subject) -> None:
    from synthact.core.validate import check_log_sparsity

    if subject.estimate_sparsity:
        if subject.log_sparsity is not None:
            raise ValueError(f"subject {subject.name!r}: log_sparsity given but marked estimated")
        return
    try:
        log_sparsity = check_log_sparsity(subject.log_sparsity, subject.sae.cfg.d_sae)
    except (TypeError, ValueError) as error:
        raise type(error)(f"subject {subject.name!r}: {error}") from None
    if log_sparsity.device.type != "cpu":
        raise ValueError(f"subject {subject.name!r}: log_sparsity must be on the CPU")
