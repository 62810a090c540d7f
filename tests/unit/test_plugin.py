"""The pytest plugin loads without effects: no Hugging Face library, no connection; only a run
that computes on a hub subject decides its hub access."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from synthact.fixtures import plugin
from tests.subprocesses import nested_env

HEAVY = ("sae_lens", "transformer_lens", "datasets", "huggingface_hub")

IMPORT_THE_PLUGIN = f"""
import importlib, socket, sys

def refuse(*args, **kwargs):
    raise AssertionError(f"the plugin's import opened a connection: {{args}}")

socket.socket.connect = socket.create_connection = refuse
import synthact.fixtures.plugin as plugin
for module in plugin.pytest_plugins:
    importlib.import_module(module)
print(sorted(name for name in {HEAVY!r} if name in sys.modules))
"""


def test_importing_the_plugin_imports_no_hub_library_and_opens_no_connection():
    """In a fresh interpreter, with the hub's offline setting unset (where the probe would
    connect) and every connection refused."""
    env = {k: v for k, v in nested_env().items() if not k.startswith("HF_")}
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_THE_PLUGIN],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout


def _config(*args: str, subject: str = "gpt2-small") -> SimpleNamespace:
    """What `plugin.runs_on_hub` reads of a run: its arguments and its ``--subject``."""
    root = Path(__file__).resolve().parents[2]
    return SimpleNamespace(
        args=[a for a in args if not a.startswith("-")],
        invocation_params=SimpleNamespace(args=args, dir=root),
        getoption=lambda name: {"subject": subject}[name],
    )


@pytest.mark.parametrize(
    ("args", "subject", "hub"),
    [
        (("tests/unit",), "gpt2-small", False),  # the default subject, no claims: none loads
        (("claims",), "gpt2-small", True),
        (("claims", "--subject", "planted"), "planted", False),
        (("claims", "--subject=planted,gpt2-small"), "planted,gpt2-small", True),
        (("my_claims", "--subject", "gpt2-small-res-jb/x"), "gpt2-small-res-jb/x", True),
        (("claims", "--subject", "null:gpt2-small-res-jb/x"), "null:gpt2-small-res-jb/x", False),
        (("claims", "--subject", "path:/a/b"), "path:/a/b", False),
        (("claims", "--subject", "null-gpt2"), "null-gpt2", False),
    ],
)
def test_only_a_run_on_a_hub_subject_probes_the_hub(args, subject, hub):
    assert plugin.runs_on_hub(_config(*args, subject=subject)) is hub


def test_the_hub_subjects_are_told_from_their_names():
    """`uses_hub` (from the name alone) agrees with each registered subject's spec."""
    from synthact.subjects import SUBJECTS, uses_hub

    assert {name for name in SUBJECTS if uses_hub(name)} == {"gpt2-small"}
    assert all(uses_hub(name) is spec.hub for name, spec in SUBJECTS.items())
