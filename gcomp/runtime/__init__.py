"""Compiled functions: the cache and its guards, executables, state write-back."""
