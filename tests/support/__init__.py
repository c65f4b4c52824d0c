"""Helpers shared by tests: real peers (network namespaces, servers) set up and torn down cleanly."""
