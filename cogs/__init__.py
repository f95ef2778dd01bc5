"""Paddock's cogs: one feature a file, each with a module-level ``setup(bot)``."""
