"""Instructor tools for the solution tree. Not part of the student release.

Run ``python -m kit --help`` for the commands (release, site, grade, verify, gradescope,
port, bench). CONTRIBUTING.md, section 11, says which module holds each concern they share
(notebooks, owned outputs, the solution tree, markers, reports).
"""
