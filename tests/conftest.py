"""Shared pytest setup: the hypothesis profile every test file runs under.

"ci" (the default) is deterministic and modest, so the suite is fast and repeatable;
set HYPOTHESIS_PROFILE to another registered profile (or register your own) to explore.
"""
import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, max_examples=25, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
