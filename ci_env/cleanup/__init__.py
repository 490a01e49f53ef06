"""Cleanup and purge: git facts + tags found -> a plan (policies), then removals and a report (run)."""
