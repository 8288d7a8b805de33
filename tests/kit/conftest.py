"""Tests of the instructor tools. The fixture trees hold their own tests: never collect them."""

collect_ignore_glob = ["fixtures/*"]
