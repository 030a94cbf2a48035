"""Attacks on a node, each asserting the exact answer (issue 16)."""
