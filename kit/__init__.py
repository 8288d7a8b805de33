"""Instructor tools for the solution tree. Not part of the student release.

Run ``python -m kit --help`` for the commands: ``release`` (solution tree to student
tree) and ``site`` (execute the notebooks and render them as a static site).
"""
