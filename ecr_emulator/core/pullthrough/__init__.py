"""The pull through cache: rules (``rules``), upstream registries as a client sees them (``client``,
``secrets``), fetches under database leases (``fetch``, ``leases``) and the read-through handler
a pull that misses calls (``cache``)."""
