"""Root conftest: the run's environment and hub access, then the fixture plugins of the suite.

MKL and the Hugging Face libraries read their variables when they are imported, so both are set
here, before any of them is (see `synthact.set_run_environment`, `synthact.configure_hub_access`).
"""

from synthact import configure_hub_access, set_run_environment

set_run_environment()
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
