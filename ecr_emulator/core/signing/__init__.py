"""Managed signing: the registry's signing configuration, the signing job a push queues, the
Notary Project signature it stores as an OCI referrer, and the keys that sign it."""
