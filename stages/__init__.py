"""Stages of the NFT pipeline; each module with a ``main(argv)`` runs as ``python -m stages.<name>``."""

__version__ = "0.1.0"
