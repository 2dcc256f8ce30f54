"""Composition: builds a demo, a loop or a daemon from the I/O parts and the pure core; owns no formula."""
