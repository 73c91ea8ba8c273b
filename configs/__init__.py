"""Shipped default configuration (providers, the model catalogue, defaults), read as package data."""
