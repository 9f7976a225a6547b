"""The Centralita application: the composition root and the `centralita` command."""
