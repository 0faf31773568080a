"""Adapters that turn one kind of input into the engine's backend-neutral :class:`ProcessFacts`."""
