"""Shipped default configuration (providers, pricing, defaults), read as package data."""
