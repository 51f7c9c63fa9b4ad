"""Helpers of scripts/audit_negatives.py (the independent audit of a corpus)."""
