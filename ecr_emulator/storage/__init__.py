"""Persistence: SQLAlchemy tables, sessions, migrations and the BlobStore drivers. Knows no ECR rules."""
