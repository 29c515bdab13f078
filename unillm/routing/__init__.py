"""Routing: which targets a call may use, in what order, and when to try the next one."""
