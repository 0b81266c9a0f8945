"""Images: storing manifests (put), reading them (query, lookup), deleting them, referrers."""
