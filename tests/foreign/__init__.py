"""The foreign-service corpus (see README.md)."""
