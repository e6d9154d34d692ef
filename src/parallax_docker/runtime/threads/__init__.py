"""Threads: long-lived agent sessions with an objective, on this runtime's agents.

``record.py`` is a thread's state machine, ``book.py`` the threads known and how a change goes
out, ``follower.py`` what the agents' events mean for their threads, ``workers.py`` the work of
each thread (spawn, prepare, objective, inputs), ``service.py`` the verbs and the upkeep.
docs/threads.md is the contract as served.
"""
