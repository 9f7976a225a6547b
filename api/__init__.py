"""The REST API (FastAPI): thin routers over the core services."""
