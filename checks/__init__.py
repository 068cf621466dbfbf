"""Verification checks: one pytest module per stage, each check run once per host it applies to."""
