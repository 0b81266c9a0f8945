"""Data files shipped with the package (the seed vulnerability database lives in fixtures/osv)."""
