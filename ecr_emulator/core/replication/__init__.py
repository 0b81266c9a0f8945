"""Replication: the registry's configuration, copies to other regions and accounts, the statuses
DescribeImageReplicationStatus reports, delete replication, and backfills."""
