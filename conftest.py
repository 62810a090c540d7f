"""Root conftest: hub access, then the fixture plugins of the claims suite.

The Hugging Face libraries read ``HF_HUB_OFFLINE`` when they are imported, so hub access is decided
here, before any of them is (see `synthact.configure_hub_access`).
"""

from synthact import configure_hub_access

configure_hub_access()

pytest_plugins = [
    "fixtures.options",
    "fixtures.experiments",
    "fixtures.evidence",
    "fixtures.expectations",
    "fixtures.verdicts",
    "fixtures.snapshots",
    "fixtures.allure_files",
    "fixtures.cluster",
]
