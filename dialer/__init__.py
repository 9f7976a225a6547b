"""Outbound campaigns: pacing, compliance (do-not-call, callee-local hours, abandonment) and scheduling."""
