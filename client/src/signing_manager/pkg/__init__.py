"""Flat installer packages (.pkg): XAR archives, their signing and verification."""
