"""Shared core of Centralita: settings, database, customers, timeline, cases, auth and the event bus.

Imports point inward: api/, voice/ and dialer/ import from here; nothing here imports them.
"""
