"""Runners: the last position of a group of prompts, recomputed for many path points at once.

`load` takes a group's tokens ``[g, P]``; calling a runner with path points ``[bp, bs, d]`` of
the group's ``prompts`` gives resid at hook_out ``[bp, bs, d]`` and, with KL, next-token logits
``[bp, bs, V]`` (else None).
"""

from __future__ import annotations

import torch
from transformer_lens import HookedTransformer
from transformer_lens.cache.key_value_cache_entry import TransformerLensKeyValueCacheEntry
from transformer_lens.utilities.activation_functions import softcap_enabled

from synthact.method.engine import last_position
from synthact.method.engine.request import Request


class Runner:
    """Runs blocks first_block.. on the last position; subclasses run one block in `_block`."""

    def __init__(self, model: HookedTransformer, request: Request):
        self.model, self.request = model, request
        last_block = model.cfg.n_layers - 1 if request.kl else request.out_block
        self.layers = range(request.first_block, last_block + 1)

    def load(self, tokens: torch.Tensor) -> None:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor, prompts: slice) -> tuple[torch.Tensor, torch.Tensor | None]:
        resid = x.to(self.model.cfg.dtype)
        for layer in self.layers:
            resid = self._block(layer, resid, prompts)
            if layer == self.request.out_block:
                out = resid
        return out, logits(self.model, resid) if self.request.kl else None

    def _block(self, layer: int, resid: torch.Tensor, prompts: slice) -> torch.Tensor:
        """resid_pre ``[bp, bs, d]`` of block ``layer`` for rows of ``prompts`` -> resid_post."""
        raise NotImplementedError

    def _prefix(self, tokens: torch.Tensor) -> torch.Tensor:
        """Residual stream ``[g, P-1, d]`` of the prompts' prefixes entering the first block."""
        return self.model(tokens[:, :-1], stop_at_layer=self.layers[0])


class FastRunner(Runner):
    """Each block's last position from its cached prefix keys and values (`LastPositionBlock`)."""

    def __init__(self, model: HookedTransformer, request: Request):
        super().__init__(model, request)
        self.blocks = {i: last_position.LastPositionBlock(model.blocks[i]) for i in self.layers}

    def load(self, tokens: torch.Tensor) -> None:
        resid = self._prefix(tokens)
        for layer in self.layers:
            resid = self.blocks[layer].run_prefix(resid)

    def _block(self, layer: int, resid: torch.Tensor, prompts: slice) -> torch.Tensor:
        return self.blocks[layer](resid, prompts)


class BlockCacheRunner(Runner):
    """TransformerLens's own blocks on the last position, the prefix keys and values in frozen
    KV-cache entries copied for every row: exact for anything TransformerLens caches."""

    def load(self, tokens: torch.Tensor) -> None:
        resid, self.cache = self._prefix(tokens), {}
        for layer in self.layers:
            entry = TransformerLensKeyValueCacheEntry.init_cache_entry(
                self.model.cfg, resid.device, tokens.shape[0]
            )
            resid = self.model.blocks[layer](resid, past_kv_cache_entry=entry)
            self.cache[layer] = (entry.past_keys, entry.past_values)

    def _block(self, layer: int, resid: torch.Tensor, prompts: slice) -> torch.Tensor:
        keys, values = self.cache[layer]
        bs = resid.shape[1]
        entry = TransformerLensKeyValueCacheEntry(
            past_keys=keys[prompts].repeat_interleave(bs, dim=0),
            past_values=values[prompts].repeat_interleave(bs, dim=0),
            frozen=True,
        )
        rows = resid.flatten(0, 1)[:, None]  # [bp·bs, 1, d]: one position per row
        return self.model.blocks[layer](rows, past_kv_cache_entry=entry).view(resid.shape)


class NaiveRunner(Runner):
    """The reference: a full forward pass of the prompt per path point, hooked at hook_in."""

    def load(self, tokens: torch.Tensor) -> None:
        self.tokens = tokens

    def __call__(self, x: torch.Tensor, prompts: slice) -> tuple[torch.Tensor, torch.Tensor | None]:
        model, request = self.model, self.request
        bp, bs, d_model = x.shape
        tokens = self.tokens[prompts].repeat_interleave(bs, dim=0)  # [bp·bs, P]
        rows = x.reshape(bp * bs, d_model).to(model.cfg.dtype)
        captured = {}

        def replace_last(act: torch.Tensor, hook: object) -> torch.Tensor:
            act[:, -1, :] = rows
            return act

        def capture_last(act: torch.Tensor, hook: object) -> None:
            captured["out"] = act[:, -1, :].clone()

        hooks = [
            (request.hook_in, replace_last),
            (f"blocks.{request.out_block}.hook_resid_post", capture_last),
        ]
        if not request.kl:
            model.run_with_hooks(tokens, fwd_hooks=hooks, stop_at_layer=request.out_block + 1)
            return captured["out"].view(bp, bs, d_model), None
        out_logits = model.run_with_hooks(tokens, fwd_hooks=hooks, return_type="logits")  # capped
        return captured["out"].view(bp, bs, d_model), out_logits[:, -1, :].view(bp, bs, -1)


def logits(model: HookedTransformer, resid: torch.Tensor) -> torch.Tensor:
    """Next-token logits ``[bp, bs, V]`` of the last block's resid_post ``[bp, bs, d]``: final
    norm, unembedding, output soft cap (Gemma-2), as the model computes them."""
    if model.cfg.normalization_type is not None:
        resid = model.ln_final(resid)
    out = torch.addmm(model.b_U, resid.reshape(-1, resid.shape[-1]), model.W_U)
    cap = model.cfg.output_logits_soft_cap
    if softcap_enabled(cap):
        out = out.div_(cap).tanh_().mul_(cap)  # cap·tanh(logits / cap), in place
    return out.view(*resid.shape[:-1], -1)
