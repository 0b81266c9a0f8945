"""ecr-emulator: Amazon ECR's JSON API and registry endpoint, on a laptop or in CI."""

__version__ = "0.1.0"
