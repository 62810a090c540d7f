"""The construction registry, outside constructions (entry point, --construction), co-occurrence
counts and the synthetic-cooccurrence construction."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from synthact.method import constructions, synthetic
from synthact.method.cooccurrence import Cooccurrence, count_cooccurrence
from synthact.method.experiments import EXPERIMENTS
from tests.readme import quick_start_command
from tests.subprocesses import nested_env, session_cache

PLUGIN = """
def shrunk(**kw):
    return 0.9 * kw["base"]
"""

CHECK = """
import torch
from synthact.method import constructions
from synthact.core.cache import ResultCache
from synthact.method.config import RunConfig
from synthact.method.experiments import EXPERIMENTS, Lab

config = RunConfig(subject="planted", n=4, n_gaussian=300, construction={spec!r}).resolved()
assert "shrunk" in constructions.names("plateau"), constructions.names()
for joined in ("sensitivity", "kl", "plateau", "other-source"):
    assert "shrunk" in EXPERIMENTS[joined].types
lab = Lab(config, ResultCache({cache!r}))
torch.testing.assert_close(lab.targets("shrunk"), 0.9 * lab.base_acts)
print(lab.result("sensitivity", "absolute").steps("shrunk").shape)
"""


def run_with_plugin(tmp_path: Path, spec: str, entry_point: bool) -> str:
    """Run CHECK in a fresh interpreter that has the plugin package on its path (installed with
    an entry point when ``entry_point``); returns its stdout."""
    (tmp_path / "shrink_plugin.py").write_text(PLUGIN)
    if entry_point:
        info = tmp_path / "shrink_plugin-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: shrink-plugin\nVersion: 0.1\n")
        group = constructions.ENTRY_POINT_GROUP
        (info / "entry_points.txt").write_text(f"[{group}]\nshrunk = shrink_plugin:shrunk\n")
    code = CHECK.format(spec=spec, cache=str(tmp_path / "cache"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_an_entry_point_construction_joins_every_experiment(tmp_path):
    assert run_with_plugin(tmp_path, None, entry_point=True).strip() == "(4,)"


@pytest.mark.slow
def test_a_construction_named_on_the_command_line_joins_every_experiment(tmp_path):
    out = run_with_plugin(tmp_path, "shrink_plugin:shrunk", entry_point=False)
    assert out.strip() == "(4,)"


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("no_colon", "expected module:function"),
        ("no_such_module_xyz:f", "cannot import no_such_module_xyz"),
        ("synthact.method.constructions:no_such_builder", "has no 'no_such_builder'"),
        ("synthact.method.constructions:MEMBERSHIPS", "a builder function"),
    ],
)
def test_bad_construction_specs_say_what_is_wrong(spec, match):
    with pytest.raises((ValueError, TypeError), match=match):
        constructions.load(spec)


def test_every_list_of_types_comes_from_the_registry():
    assert EXPERIMENTS["sensitivity"].types == ("real", "random", *constructions.names())
    assert EXPERIMENTS["plateau"].types == ("real", "random", *constructions.names("plateau"))
    assert "synthetic-cooccurrence" in constructions.names("kl")
    assert "synthetic-cooccurrence" not in constructions.names(paper=True)
    control = constructions.CONSTRUCTIONS["synthetic-frequency"]
    assert control.joins == constructions.CONSTRUCTIONS["synthetic-cooccurrence"].joins
    assert not control.paper
    with pytest.raises(ValueError, match="joins"):
        constructions.Construction("x", lambda **kw: kw["base"], joins=("tables",))


def test_a_builder_of_the_wrong_shape_is_refused(monkeypatch):
    bad = constructions.Construction("bad", lambda **kw: kw["base"][:1])
    monkeypatch.setitem(constructions.CONSTRUCTIONS, "bad", bad)
    sae = _identity_sae(4)
    pool = constructions.PoolStatistics(sae, torch.zeros(4))
    with pytest.raises(ValueError, match="base's shape"):
        constructions.build(
            "bad", base=torch.rand(3, 4), sae=sae, pool=pool, generator=torch.Generator()
        )


# --- co-occurrence ----------------------------------------------------------------------------


def _identity_sae(d: int):
    from sae_lens import StandardSAE, StandardSAEConfig

    sae = StandardSAE(StandardSAEConfig(d_in=d, d_sae=d, dtype="float32"))
    with torch.no_grad():
        sae.W_enc.copy_(torch.eye(d))
        sae.W_dec.copy_(torch.eye(d))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae


def test_cooccurrence_counts_pairs_exactly_in_any_batching():
    acts = torch.tensor(
        [[1.0, 2.0, 0.0, 3.0], [0.0, 1.0, 0.0, 1.0], [5.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]
    )
    sae = _identity_sae(4)
    counts = count_cooccurrence(sae, acts, batch_size=1)
    assert counts.firing.tolist() == [3, 3, 1, 3]
    pairs = {tuple(p): int(c) for p, c in zip(counts.pairs, counts.counts, strict=True)}
    assert pairs == {(0, 1): 2, (0, 2): 1, (0, 3): 2, (1, 2): 1, (1, 3): 3, (2, 3): 1}
    again = count_cooccurrence(sae, acts, batch_size=3)
    assert (again.pairs == counts.pairs).all() and (again.counts == counts.counts).all()
    torch.testing.assert_close(
        counts.mean_values, torch.tensor([7 / 3, 4 / 3, 1.0, 5 / 3]).double()
    )
    given = counts.conditional(torch.tensor([2, 0]))
    torch.testing.assert_close(given[0], torch.ones(4, dtype=torch.float64))
    torch.testing.assert_close(given[1], torch.tensor([1.0, 2 / 3, 1 / 3, 2 / 3]).double())
    assert Cooccurrence.from_arrays(counts.arrays()).pairs.tolist() == counts.pairs.tolist()


def test_synthetic_cooccurrence_moves_a_whole_group_to_another_whole_group():
    """Latents 0-2 and 3-5 fire as groups (6-8 too, rarely); a row of group 0-2 becomes group
    3-5 (equal frequency, never co-firing with 0-2), values kept."""
    rows = [[1, 1, 1, 0, 0, 0, 0, 0, 0]] * 5 + [[0, 0, 0, 1, 1, 1, 0, 0, 0]] * 5
    rows += [[0, 0, 0, 0, 0, 0, 1, 1, 1]]
    pool = torch.tensor(rows, dtype=torch.float32)
    counts = count_cooccurrence(_identity_sae(9), pool)
    log_sparsity = torch.log10(torch.from_numpy(counts.firing / len(pool)) + 1e-10).float()
    acts = torch.tensor([[3.0, 1.0, 2.0, 0, 0, 0, 0, 0, 0]])
    moved = synthetic.synthetic_cooccurrence(
        acts, log_sparsity, counts, torch.Generator(), n_candidates=5
    )
    assert moved[0, :3].eq(0).all() and moved[0, 6:].eq(0).all()
    assert sorted(moved[0, 3:6].tolist()) == [1.0, 2.0, 3.0]
    assert moved[0, 3] == 3.0  # the top latent takes top_synth, the nearest in frequency


def readme_constructions() -> tuple[str, list[str]]:
    """The README's example module ``my_constructions.py`` and the specs it registers them with."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text[text.index("## Constructions") :]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    specs = section.split("Register them with `--construction ", 1)[1].split("`", 1)[0]
    return code, specs.split(",")


def replicate_here(folder: Path, cache: Path, *words: str) -> subprocess.CompletedProcess:
    """``synthact replicate WORDS`` run from ``folder`` as a user runs it (the console script, so
    nothing but synthact's own code puts the folder on the path), on planted at the quick
    start's n and on the result cache ``cache``: the built-in types' rows are the quick start's."""
    script = Path(sys.executable).parent / "synthact"
    quick = quick_start_command()
    sizes = [
        word for flag in ("--n", "--n-gaussian") for word in (flag, quick[quick.index(flag) + 1])
    ]
    command = [str(script), "replicate", "--subject", "planted", *sizes]
    command += ["--matrix-dir", str(folder / "reports"), "--synthact-cache", str(cache), *words]
    return subprocess.run(command, cwd=folder, env=nested_env(), capture_output=True, text=True)


@pytest.mark.slow
def test_the_readme_construction_example_runs_from_the_user_s_folder(request, tmp_path):
    code, specs = readme_constructions()
    (tmp_path / "my_constructions.py").write_text(code)
    cache = session_cache(request.config)
    done = replicate_here(tmp_path, cache, "--construction", ",".join(specs))
    assert done.returncode in (0, 1), done.stderr[-3000:]
    leaderboard = (tmp_path / "reports" / "constructions.md").read_text()
    assert "| shrunk |" in leaderboard and "| rare latents only |" in leaderboard  # their labels


@pytest.mark.slow
@pytest.mark.parametrize(
    ("spec", "raised"), [("json:dumps", "TypeError"), ("my_constructions:broken", "KeyError")]
)
def test_a_builder_that_raises_is_one_line_of_bad_input(request, tmp_path, spec, raised):
    (tmp_path / "my_constructions.py").write_text("def broken(**kw):\n    return kw['nothing']\n")
    done = replicate_here(tmp_path, session_cache(request.config), "--construction", spec)
    lines = [line for line in done.stderr.splitlines() if line.startswith("synthact: ")]
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-3000:]
    assert f"--construction '{spec.partition(':')[2]}" in lines[0] and raised in lines[0]
    assert "Traceback" not in done.stderr
