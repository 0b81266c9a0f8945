"""Lifecycle policies: the document (policy), the evaluator, preview and execution."""
