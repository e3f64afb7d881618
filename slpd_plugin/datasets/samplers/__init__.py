"""Samplers that decide which regions form a batch."""
