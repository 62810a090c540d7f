"""Unit tests of synthact.subjects.prompts: row prefixes, token windows, parquet reading."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from synthact.subjects import prompts
from synthact.subjects.prompts import (
    PROMPT_LEN,
    dataset_prefixes,
    read_dataset_rows,
    read_parquet_prefixes,
    sample_rows,
    sample_windows,
    token_stream,
    window_table,
)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def prefixes() -> torch.Tensor:
    """200 distinct rows: row i is [i*100, i*100 + 1, ...]."""
    return torch.arange(200)[:, None] * 100 + torch.arange(PROMPT_LEN)


def test_sample_rows_shape_dtype_and_distinct_rows(prefixes: torch.Tensor) -> None:
    tokens = sample_rows(prefixes.to(torch.int32), 50, gen(0))
    assert tokens.shape == (50, PROMPT_LEN) and tokens.dtype == torch.int64
    row_ids = tokens[:, 0] // 100
    assert len(set(row_ids.tolist())) == 50
    assert torch.equal(tokens, prefixes[row_ids])


def test_sample_rows_deterministic_per_seed(prefixes: torch.Tensor) -> None:
    assert torch.equal(sample_rows(prefixes, 20, gen(1)), sample_rows(prefixes, 20, gen(1)))
    assert not torch.equal(sample_rows(prefixes, 20, gen(1)), sample_rows(prefixes, 20, gen(2)))


def test_sample_rows_can_take_every_row(prefixes: torch.Tensor) -> None:
    tokens = sample_rows(prefixes, len(prefixes), gen(0))
    assert sorted(tokens[:, 0].tolist()) == prefixes[:, 0].tolist()


@pytest.mark.parametrize("n", [0, -1, 201, 2.5, True])
def test_sample_rows_rejects_bad_counts(prefixes: torch.Tensor, n: object) -> None:
    with pytest.raises(ValueError, match=r"n must be|distinct prompts"):
        sample_rows(prefixes, n, gen(0))  # type: ignore[arg-type]


def test_sample_rows_rejects_bad_inputs(prefixes: torch.Tensor) -> None:
    with pytest.raises(TypeError, match=r"torch\.Generator"):
        sample_rows(prefixes, 3, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\[n_rows, length\]"):
        sample_rows(prefixes.flatten(), 3, gen(0))


def test_sample_rows_skips_repeated_sequences() -> None:
    """Rows 0..49 hold 10 distinct sequences, five copies each (boilerplate openings)."""
    prefixes = (torch.arange(50) % 10)[:, None] * 100 + torch.arange(PROMPT_LEN)
    tokens = sample_rows(prefixes, 10, gen(0))
    assert sorted(tokens[:, 0].tolist()) == list(range(0, 1000, 100))
    with pytest.raises(ValueError, match=r"11 distinct prompts but the books holds only 10 .*50"):
        sample_rows(prefixes, 11, gen(0), source="the books")


def test_sample_rows_draws_uniform_rows_before_removing_repeats() -> None:
    """A sequence in 3 of 4 rows is drawn first 3 times in 4: rows, not sequences, are uniform."""
    prefixes = torch.tensor([[7] * PROMPT_LEN] * 3 + [[8] * PROMPT_LEN])
    firsts = [int(sample_rows(prefixes, 1, gen(seed))[0, 0]) for seed in range(2000)]
    assert 0.71 < firsts.count(7) / 2000 < 0.79  # Binomial(2000, 3/4): sd 0.01


def test_sample_windows_are_consecutive_distinct_slices() -> None:
    stream = torch.arange(1000, 1300)
    tokens = sample_windows(stream, 100, gen(0))
    assert tokens.shape == (100, PROMPT_LEN) and tokens.dtype == torch.int64
    assert torch.equal(tokens - tokens[:, :1], torch.arange(PROMPT_LEN).expand(100, -1))
    starts = tokens[:, 0]
    assert len(set(starts.tolist())) == 100
    assert starts.min() >= 1000 and starts.max() <= 1300 - PROMPT_LEN


def test_sample_windows_cover_every_start_and_respect_length() -> None:
    stream = torch.arange(20)
    tokens = sample_windows(stream, 20 - 4 + 1, gen(3), length=4)
    assert sorted(tokens[:, 0].tolist()) == list(range(17))
    with pytest.raises(ValueError, match="only 17 windows"):
        sample_windows(stream, 18, gen(3), length=4)


def test_sample_windows_skip_repeated_windows() -> None:
    """A stream that repeats one 30-token text 4 times: a window's content depends only on its
    start modulo 30, so its 111 windows hold 30 distinct ones."""
    stream = torch.arange(30).repeat(4)
    tokens = sample_windows(stream, 30, gen(1))
    assert len({tuple(row) for row in tokens.tolist()}) == 30
    with pytest.raises(ValueError, match=r"31 distinct prompts but the token stream .* only 30"):
        sample_windows(stream, 31, gen(1))


def test_sample_windows_deterministic_per_seed() -> None:
    stream = torch.randint(0, 50257, (5000,), generator=gen(9))
    assert torch.equal(sample_windows(stream, 64, gen(4)), sample_windows(stream, 64, gen(4)))
    assert not torch.equal(sample_windows(stream, 64, gen(4)), sample_windows(stream, 64, gen(5)))


def test_sample_windows_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="1-D"):
        sample_windows(torch.zeros(3, 30, dtype=torch.int64), 2, gen(0))
    with pytest.raises(ValueError, match="only 0 windows"):
        sample_windows(torch.arange(5), 1, gen(0))
    with pytest.raises(ValueError, match="prompt length"):
        sample_windows(torch.arange(50), 1, gen(0), length=0)


def write_token_parquet(path, rows: list[list[int]]) -> None:
    table = pa.table(
        {"input_ids": pa.array(rows, type=pa.list_(pa.int32())), "n": range(len(rows))}
    )
    pq.write_table(table, path, row_group_size=7)


def test_read_parquet_prefixes_keeps_first_tokens_in_file_order(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prompts, "PARQUET_BATCH_ROWS", 5)  # several batches per file
    rows_a = [list(range(i, i + 12 + i % 3)) for i in range(23)]
    rows_b = [list(range(500 + i, 520 + i)) for i in range(4)]
    write_token_parquet(tmp_path / "a.parquet", rows_a)
    write_token_parquet(tmp_path / "b.parquet", rows_b)
    prefixes = read_parquet_prefixes([tmp_path / "a.parquet", tmp_path / "b.parquet"])
    expected = torch.tensor([row[:PROMPT_LEN] for row in rows_a + rows_b])
    assert prefixes.dtype == torch.int64
    assert torch.equal(prefixes, expected)


def test_read_parquet_prefixes_rejects_short_rows_and_missing_column(tmp_path) -> None:
    write_token_parquet(tmp_path / "short.parquet", [list(range(12)), list(range(9))])
    with pytest.raises(ValueError, match="row of 9 tokens"):
        read_parquet_prefixes([tmp_path / "short.parquet"])
    with pytest.raises(ValueError, match="no column 'tokens'"):
        read_parquet_prefixes([tmp_path / "short.parquet"], 5, column="tokens")
    with pytest.raises(ValueError, match="no parquet files"):
        read_parquet_prefixes([])


class RecordingTokenizer:
    """Stands in for a Hugging Face tokenizer: one id per character, records the call."""

    def __init__(self) -> None:
        self.kwargs: dict[str, object] = {}

    def __call__(self, text: str | list[str], **kwargs: object) -> dict[str, list]:
        self.kwargs = kwargs
        if isinstance(text, list):
            return {"input_ids": [[ord(c) for c in t] for t in text]}
        return {"input_ids": [ord(c) for c in text]}


def test_token_stream_adds_no_special_tokens() -> None:
    tokenizer = RecordingTokenizer()
    stream = token_stream(tokenizer, "abc")  # type: ignore[arg-type]
    assert stream.tolist() == [97, 98, 99] and stream.dtype == torch.int64
    assert tokenizer.kwargs["add_special_tokens"] is False
    with pytest.raises(ValueError, match="no tokens"):
        token_stream(tokenizer, "")  # type: ignore[arg-type]


# --- prompt tables of SAELens release subjects --------------------------------------------------


def test_window_table_with_and_without_bos() -> None:
    stream = torch.arange(100, 112)
    plain = window_table(stream, 4)
    assert plain.shape == (9, 4) and plain.dtype == torch.int64
    assert plain[0].tolist() == [100, 101, 102, 103] and plain[-1].tolist() == [108, 109, 110, 111]
    with_bos = window_table(stream, 4, bos_id=7)
    assert with_bos.shape == (10, 4)
    assert with_bos[0].tolist() == [7, 100, 101, 102] and (with_bos[:, 0] == 7).all()


def test_window_table_rejects_what_cannot_make_a_prompt() -> None:
    with pytest.raises(ValueError, match="needs length >= 2"):
        window_table(torch.arange(10), 1, bos_id=0)
    with pytest.raises(ValueError, match="has 3 tokens; prompts need 4"):
        window_table(torch.arange(3), 4)


def test_dataset_prefixes_of_text_rows_follow_bos() -> None:
    tokenizer = RecordingTokenizer()
    rows = [{"text": "abcdef"}, {"text": "ab"}, {"text": "xyz"}]
    table = dataset_prefixes(rows, tokenizer, 4, bos_id=0)  # type: ignore[arg-type]
    assert table.tolist() == [[0, 97, 98, 99], [0, 120, 121, 122]]  # "ab" is too short
    assert tokenizer.kwargs["add_special_tokens"] is False
    table = dataset_prefixes(rows, tokenizer, 3)  # type: ignore[arg-type]
    assert table.tolist() == [[97, 98, 99], [120, 121, 122]]


@pytest.mark.parametrize("column", ["tokens", "input_ids"])
def test_dataset_prefixes_of_pretokenized_rows_are_used_as_they_are(column: str) -> None:
    rows = [{column: [5, 6, 7, 8, 9]}, {column: [1, 2]}, {column: [3, 4, 5]}]
    table = dataset_prefixes(rows, RecordingTokenizer(), 3, bos_id=0)  # type: ignore[arg-type]
    assert table.tolist() == [[5, 6, 7], [3, 4, 5]]


def test_dataset_prefixes_need_a_known_column() -> None:
    with pytest.raises(ValueError, match="'tokens', 'input_ids' or 'text' column; found"):
        dataset_prefixes([{"body": "x"}], RecordingTokenizer(), 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no rows"):
        dataset_prefixes([], RecordingTokenizer(), 3)  # type: ignore[arg-type]


def test_read_dataset_rows_streams_the_first_rows_of_a_local_dataset(tmp_path) -> None:
    rows = [list(range(i, i + 12)) for i in range(30)]
    (tmp_path / "data").mkdir()
    write_token_parquet(tmp_path / "data" / "train-00000-of-00001.parquet", rows)
    read = read_dataset_rows(str(tmp_path), 5)
    assert [row["input_ids"] for row in read] == rows[:5]


def test_pydoc_topics_text_is_the_shipped_copy_not_the_interpreters(monkeypatch) -> None:
    """The null subjects' text does not change with the interpreter's own ``pydoc_data``
    (it differs between CPython patch releases): replacing it changes nothing."""
    import sys
    import types

    shipped = prompts.pydoc_topics_text()
    prompts.pydoc_topics_text.cache_clear()
    other = types.ModuleType("pydoc_data.topics")
    other.topics = {"if": "another interpreter's text"}
    monkeypatch.setitem(sys.modules, "pydoc_data.topics", other)
    assert prompts.pydoc_topics_text() == shipped
    assert len(shipped) == 465_126 and shipped.startswith('The "assert" statement')


def test_pydoc_topics_text_refuses_a_changed_file(monkeypatch) -> None:
    prompts.pydoc_topics_text.cache_clear()
    monkeypatch.setattr(prompts, "PYDOC_TOPICS_SHA256", "0" * 64)
    with pytest.raises(ValueError, match="restore it from the repository"):
        prompts.pydoc_topics_text()
    prompts.pydoc_topics_text.cache_clear()
