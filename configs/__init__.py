"""Shipped default configuration (providers, the model catalogue, defaults), as package data."""
