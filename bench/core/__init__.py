"""The floor every layer stands on: errors, atomic files and content hashes, project paths.

Imports nothing from the rest of forensibench.
"""
