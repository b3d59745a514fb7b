"""Probes: each gathers one kind of fact, once per diagnosis; they never judge."""
