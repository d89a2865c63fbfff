from tests.integration.distribution.conftest import make_worker  # noqa: F401 - the same worker fixture
