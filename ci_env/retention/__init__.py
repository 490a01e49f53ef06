"""Retention rules for any repository: a rules file (or options) saying, per repository pattern and in priority
order, which tags to keep and which to remove by count and age, and a pure engine that decides per tag and per
untagged manifest, with a reason, over a repository's inventory and its image graph."""
