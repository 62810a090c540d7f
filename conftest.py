"""Root conftest of the checkout. The claims suite's fixtures, options and reports are synthact's
pytest plugin (`synthact.fixtures.plugin`, the ``pytest11`` entry point of the installed package),
so they load here as in any project where synthact is installed; nothing is registered twice."""
