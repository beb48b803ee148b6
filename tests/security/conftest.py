from tests.api.conftest import api, client_for, estate  # noqa: F401  (token clients, a small estate)
