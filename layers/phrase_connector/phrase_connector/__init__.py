"""Shared code of the phrase-connector Lambda functions: Phrase client, flow store, use cases."""

__version__ = "0.1.0"
