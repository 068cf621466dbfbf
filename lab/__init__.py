"""The local lab: the inventory's hosts as systemd-nspawn machines on this machine (see lab/lab.py)."""
