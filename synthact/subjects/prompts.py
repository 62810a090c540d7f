"""Prompt sampling shared by subjects: pre-tokenized rows and token streams -> ``[n, length]`` ids.

Every sampler is a pure function of its data and an explicit ``torch.Generator``: the same
generator state gives the same prompts. Within one call the prompts are DISTINCT token sequences:
rows (or window starts) are visited in a uniformly random order and a sequence already taken is
skipped, so a prompt repeated in the source (web boilerplate, a repeated phrase) appears once and
two prompts never share an activation. The prompt tables of the SAELens release subjects
(`window_table`, `dataset_prefixes`) start with BOS when asked; nothing else adds one.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import itertools
import numbers
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from synthact.core.choices import PROMPT_LEN
from synthact.core.validate import check_generator

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

FEWER_PROMPTS = (
    "ask for fewer prompts (--n, --n-gaussian), shorter ones (--prompt-len) or a larger source"
)
PARQUET_BATCH_ROWS = 4096
"""Rows decoded at a time when reading prefixes from a parquet file (bounds memory)."""


def read_parquet_prefixes(
    paths: Sequence[str | Path], length: int = PROMPT_LEN, column: str = "input_ids"
) -> torch.Tensor:
    """The first ``length`` tokens of every row of pre-tokenized parquet files, in file order.

    Args:
        paths: parquet files whose ``column`` holds one token-id list per row.
        length: tokens kept per row (rows shorter than this are an error).
        column: the token-id column.

    Returns:
        ``[n_rows, length]`` int64 (CPU), rows of ``paths[0]`` first.
    """
    _check_length(length)
    if not paths:
        raise ValueError("no parquet files given")
    chunks = []
    for path in paths:
        parquet = pq.ParquetFile(path)
        if column not in parquet.schema_arrow.names:
            raise ValueError(
                f"{path} has no column {column!r} (columns: {parquet.schema_arrow.names})"
            )
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=[column]):
            tokens = batch.column(0)
            shortest = pc.min(pc.list_value_length(tokens)).as_py()
            if shortest is not None and shortest < length:
                raise ValueError(f"{path} has a row of {shortest} tokens; prompts need {length}")
            prefixes = pc.list_flatten(pc.list_slice(tokens, 0, length)).to_numpy()
            chunks.append(torch.from_numpy(prefixes.astype("int64").reshape(-1, length)))
    return torch.cat(chunks)


def sample_rows(
    prefixes: torch.Tensor, n: int, generator: torch.Generator, *, source: str = "the prompt rows"
) -> torch.Tensor:
    """``n`` distinct token sequences among the rows of ``prefixes`` ``[n_rows, length]``.

    Rows are visited in a uniformly random order and a row equal to one already taken is skipped
    (so each sequence is drawn with the weight of its first occurrence in that order).

    Args:
        source: names the data in the error raised when it has fewer than ``n`` distinct rows.

    Returns:
        ``[n, length]`` int64 (CPU).
    """
    if prefixes.ndim != 2:
        raise ValueError(f"prefixes must be [n_rows, length], got shape {tuple(prefixes.shape)}")
    _check_count(n, len(prefixes), f"rows in {source}")
    order = torch.randperm(len(prefixes), generator=_cpu_generator(generator))
    return _first_distinct(prefixes[order], n, source).to(torch.int64)


def sample_windows(
    stream: torch.Tensor,
    n: int,
    generator: torch.Generator,
    *,
    length: int = PROMPT_LEN,
    source: str = "the token stream",
) -> torch.Tensor:
    """``n`` distinct windows of ``length`` consecutive tokens of ``stream`` ``[n_tokens]``.

    Window starts are visited in a uniformly random order over all ``n_tokens - length + 1``
    starts (windows may overlap); a window equal to one already taken is skipped.

    Returns:
        ``[n, length]`` int64 (CPU).
    """
    _check_length(length)
    if stream.ndim != 1:
        raise ValueError(f"stream must be 1-D [n_tokens], got shape {tuple(stream.shape)}")
    n_starts = len(stream) - length + 1
    _check_count(n, max(n_starts, 0), f"windows of {length} tokens in {source}")
    starts = torch.randperm(n_starts, generator=_cpu_generator(generator))
    windows = stream[starts[:, None] + torch.arange(length)]
    return _first_distinct(windows, n, f"{source} (windows of {length} tokens)").to(torch.int64)


def _first_distinct(candidates: torch.Tensor, n: int, source: str) -> torch.Tensor:
    """The first ``n`` rows of ``candidates`` ``[m, length]`` that differ from every earlier row.

    Raises:
        ValueError: fewer than ``n`` distinct rows exist; names the source and both counts.
    """
    unique, inverse = torch.unique(candidates, dim=0, return_inverse=True)
    if len(unique) < n:
        raise ValueError(
            f"asked for {n} distinct prompts but {source} holds only {len(unique)} distinct "
            f"sequences of {candidates.shape[1]} tokens (among {len(candidates)}); {FEWER_PROMPTS}"
        )
    positions = torch.arange(len(candidates))
    first = torch.full((len(unique),), len(candidates)).scatter_reduce(
        0, inverse, positions, reduce="amin"
    )
    return candidates[first.sort().values[:n]]


def window_table(stream: torch.Tensor, length: int, *, bos_id: int | None = None) -> torch.Tensor:
    """Every window of consecutive tokens of ``stream`` ``[n_tokens]`` as a prompt table.

    With ``bos_id`` each prompt is ``bos_id`` followed by ``length - 1`` stream tokens (as SAELens
    starts a training context when the SAE's cfg says ``prepend_bos``).

    Returns:
        ``[n_windows, length]`` int64 (CPU), windows in stream order.
    """
    width = _width_after_bos(length, bos_id)
    if stream.ndim != 1:
        raise ValueError(f"stream must be 1-D [n_tokens], got shape {tuple(stream.shape)}")
    if len(stream) < width:
        raise ValueError(
            f"the stream has {len(stream)} tokens; prompts need {width}: ask for shorter prompts"
        )
    windows = stream.unfold(0, width, 1).to(torch.int64)
    return _with_bos(windows, bos_id)


def dataset_prefixes(
    rows: Iterable[Mapping[str, object]],
    tokenizer: PreTrainedTokenizerBase,
    length: int,
    *,
    bos_id: int | None = None,
) -> torch.Tensor:
    """The first tokens of each dataset row, as SAELens reads the rows when training an SAE.

    A row's ``tokens`` or ``input_ids`` (pre-tokenized) are used as they are; its ``text`` is
    tokenized without special tokens and, with ``bos_id``, follows ``bos_id``. Rows with fewer
    tokens than a prompt needs are skipped.

    Returns:
        ``[n_rows_kept, length]`` int64 (CPU), rows in order.
    """
    width = _width_after_bos(length, bos_id)
    rows = list(rows)
    if not rows:
        raise ValueError("the dataset gave no rows")
    column = next((c for c in ("tokens", "input_ids", "text") if c in rows[0]), None)
    if column is None:
        raise ValueError(
            f"dataset rows need a 'tokens', 'input_ids' or 'text' column; found {sorted(rows[0])}"
        )
    if column == "text":
        ids = tokenizer([row["text"] for row in rows], add_special_tokens=False, verbose=False)
        prefixes = [row[:width] for row in ids["input_ids"] if len(row) >= width]
        return _with_bos(torch.tensor(prefixes, dtype=torch.int64).reshape(-1, width), bos_id)
    prefixes = [list(row[column][:length]) for row in rows if len(row[column]) >= length]
    return torch.tensor(prefixes, dtype=torch.int64).reshape(-1, length)


def read_dataset_rows(path: str, n_rows: int) -> list[dict]:
    """The first ``n_rows`` rows of the ``train`` split of a hub dataset or local path, streamed
    (only what is read is downloaded)."""
    import datasets

    stream = datasets.load_dataset(path, split="train", streaming=True)
    return list(itertools.islice(stream, n_rows))


def _width_after_bos(length: int, bos_id: int | None) -> int:
    """Tokens a prompt takes from its source: ``length``, less one for BOS."""
    _check_length(length)
    if bos_id is not None and length < 2:
        raise ValueError(f"a prompt that starts with BOS needs length >= 2, got {length}")
    return length - (bos_id is not None)


def _with_bos(prompts: torch.Tensor, bos_id: int | None) -> torch.Tensor:
    if bos_id is None:
        return prompts
    return torch.cat([torch.full((len(prompts), 1), bos_id, dtype=torch.int64), prompts], dim=1)


def token_stream(tokenizer: PreTrainedTokenizerBase, text: str) -> torch.Tensor:
    """``text`` tokenized as one sequence, no special tokens: ``[n_tokens]`` int64 (CPU)."""
    ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    if not ids:
        raise ValueError("the text has no tokens")
    return torch.tensor(ids, dtype=torch.int64)


PYDOC_TOPICS_FILE = "data/pydoc-topics.txt.gz"
PYDOC_TOPICS_SHA256 = "71f2ff5d99bdc1f9c48c5c2353ad138201c5ca1c377e0226857ef8fa89b8bcee"
"""SHA-256 of the shipped text (UTF-8): CPython 3.11.7's ``pydoc_data.topics`` (79 topics,
465,126 characters), as ``"\n\n".join(topics[key] for key in sorted(topics))`` wrote it."""


@functools.cache
def pydoc_topics_text() -> str:
    """English text available offline: CPython's ``pydoc_data.topics`` help pages, joined.

    The topics (the language reference sections shown by ``help("if")`` etc.) joined in sorted
    key order with blank lines, read from the copy the package ships (`PYDOC_TOPICS_FILE`): the
    interpreter's own copy changes between patch releases (3.11.2's differs from 3.11.7's), and the
    null subjects' prompts and hub must not.
    """
    path = resources.files("synthact").joinpath(PYDOC_TOPICS_FILE)
    return read_shipped_text(path, PYDOC_TOPICS_SHA256)


def read_shipped_text(path: Path | Traversable, sha256: str, what: str = "file") -> str:
    """The UTF-8 text of the gzip file ``path`` the package ships, checked against its hex
    ``sha256``: ValueError naming the file when its ``what`` changed."""
    text = gzip.decompress(path.read_bytes()).decode("utf-8")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if digest != sha256:
        raise ValueError(
            f"{path} has SHA-256 {digest}, not {sha256}: the {what} changed; restore it from "
            "the repository or reinstall synthact"
        )
    return text


def _check_length(length: int) -> None:
    if isinstance(length, bool) or not isinstance(length, numbers.Integral) or length < 1:
        raise ValueError(f"prompt length must be a positive int, got {length!r}")


def _check_count(n: int, available: int, what: str) -> None:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if n > available:
        raise ValueError(
            f"asked for {n} distinct prompts but there are only {available} {what}; {FEWER_PROMPTS}"
        )


def _cpu_generator(generator: torch.Generator) -> torch.Generator:
    check_generator(generator)
    if generator.device.type != "cpu":
        raise ValueError(f"generator must be a CPU torch.Generator, got one on {generator.device}")
    return generator
