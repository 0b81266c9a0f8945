"""The data plane: an OCI Distribution v1.1 registry over the same core as the API."""
