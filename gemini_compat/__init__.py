"""A Gemini API in front of an OpenAI-compatible upstream: the function's package (main.py serves it).

Imports nothing: deploy.sh runs ``gemini_compat.config`` with ``python3 -I -S``, the standard library
alone, and importing a submodule runs this file first.
"""
